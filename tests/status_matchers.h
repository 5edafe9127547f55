// ASSERT_OK / EXPECT_OK: Status assertions that print the status on failure.
#pragma once

#include <gtest/gtest.h>

#include "common/status.h"

#define ASSERT_OK(expr)                                                  \
  do {                                                                   \
    ::pstorage::Status ps_s_ = (expr);                                   \
    ASSERT_TRUE(ps_s_.ok()) << #expr << ": " << ps_s_.ToString();        \
  } while (0)
#define EXPECT_OK(expr)                                                  \
  do {                                                                   \
    ::pstorage::Status ps_s_ = (expr);                                   \
    EXPECT_TRUE(ps_s_.ok()) << #expr << ": " << ps_s_.ToString();        \
  } while (0)
