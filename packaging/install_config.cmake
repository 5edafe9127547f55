# install(SCRIPT) of component "config" (packaging.cmake): copies the default
# configuration to <sysconfdir>/pstorage/config.json unless a file is there.
# PSTORAGE_CONFIG_DEST (absolute, or relative to the prefix) and
# PSTORAGE_CONFIG_TEMPLATE are set by the install(CODE) just before.
set(dir "${PSTORAGE_CONFIG_DEST}")
if(NOT IS_ABSOLUTE "${dir}")
  set(dir "${CMAKE_INSTALL_PREFIX}/${dir}")
endif()
# file(INSTALL) adds DESTDIR itself; the existence check must add it here.
if(EXISTS "$ENV{DESTDIR}${dir}/config.json")
  message(STATUS "Keeping: $ENV{DESTDIR}${dir}/config.json (the service's own; never overwritten)")
else()
  file(INSTALL DESTINATION "${dir}" TYPE FILE FILES "${PSTORAGE_CONFIG_TEMPLATE}"
       PERMISSIONS OWNER_READ OWNER_WRITE)
endif()
