# Install rules and the Debian package (CPack), included at the end of the
# top-level CMakeLists.txt. Layout under CMAKE_INSTALL_PREFIX (GNUInstallDirs):
#   bin/pstorage                          (api/CMakeLists.txt)
#   lib/systemd/system/pstorage.service   the unit
#   lib/sysusers.d/pstorage.conf          the `pstorage` system user
#   lib/tmpfiles.d/pstorage.conf          ownership of the config folder
#   share/man/man1/pstorage.1.gz
#   share/pstorage/config.json            the default configuration (template)
#   <sysconfdir>/pstorage/config.json     component "config": copied from the
#                                         template only when missing
# <sysconfdir> is GNUInstallDirs' CMAKE_INSTALL_FULL_SYSCONFDIR: /etc for the
# prefix /usr (the .deb, `make deb`), <prefix>/etc otherwise (/usr/local/etc
# by default). The unit's paths are fixed at configure time: configure with
# the final prefix; use DESTDIR (not --prefix) to stage an install elsewhere.
include(GNUInstallDirs)

set(PSTORAGE_BINDIR "${CMAKE_INSTALL_FULL_BINDIR}")
set(PSTORAGE_CONFIG_DIR "${CMAKE_INSTALL_FULL_SYSCONFDIR}/pstorage")
set(PSTORAGE_SYSUSERS_FILE "${CMAKE_INSTALL_PREFIX}/lib/sysusers.d/pstorage.conf")
set(PSTORAGE_TEMPLATE_FILE "${CMAKE_INSTALL_FULL_DATADIR}/pstorage/config.json")
set(pstorage_pkg ${CMAKE_CURRENT_SOURCE_DIR}/packaging)
set(pstorage_pkg_out ${CMAKE_CURRENT_BINARY_DIR}/packaging)

configure_file(${pstorage_pkg}/pstorage.service.in ${pstorage_pkg_out}/pstorage.service @ONLY)
configure_file(${pstorage_pkg}/pstorage.tmpfiles.in ${pstorage_pkg_out}/pstorage.tmpfiles @ONLY)
foreach(script postinst prerm postrm)
  configure_file(${pstorage_pkg}/${script}.in ${pstorage_pkg_out}/${script} @ONLY
                 FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                                  GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()

# man(1) reads compressed pages; Debian wants them gzipped (-n: reproducible).
add_custom_command(OUTPUT ${pstorage_pkg_out}/pstorage.1.gz
  COMMAND sh -c
          "gzip -9n -c '${pstorage_pkg}/pstorage.1' > '${pstorage_pkg_out}/pstorage.1.gz'"
  DEPENDS ${pstorage_pkg}/pstorage.1 VERBATIM)
add_custom_target(pstorage-man ALL DEPENDS ${pstorage_pkg_out}/pstorage.1.gz)

install(FILES ${pstorage_pkg_out}/pstorage.service DESTINATION lib/systemd/system
        COMPONENT runtime)
install(FILES ${pstorage_pkg}/pstorage.sysusers DESTINATION lib/sysusers.d
        RENAME pstorage.conf COMPONENT runtime)
install(FILES ${pstorage_pkg_out}/pstorage.tmpfiles DESTINATION lib/tmpfiles.d
        RENAME pstorage.conf COMPONENT runtime)
install(FILES ${pstorage_pkg_out}/pstorage.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
        COMPONENT runtime)
install(FILES ${pstorage_pkg}/config.json DESTINATION ${CMAKE_INSTALL_DATADIR}/pstorage
        COMPONENT runtime)

# The live configuration belongs to the service (it rewrites it): never
# overwrite one that exists. Not in the .deb, whose postinst copies the
# template instead (a dpkg conffile would prompt on upgrades).
if(PSTORAGE_CONFIG_DIR STREQUAL "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SYSCONFDIR}/pstorage")
  set(pstorage_config_dest "${CMAKE_INSTALL_SYSCONFDIR}/pstorage")  # follows --prefix
else()
  set(pstorage_config_dest "${PSTORAGE_CONFIG_DIR}")  # /etc/pstorage for the prefix /usr
endif()
install(CODE "set(PSTORAGE_CONFIG_DEST \"${pstorage_config_dest}\")
              set(PSTORAGE_CONFIG_TEMPLATE \"${pstorage_pkg}/config.json\")" COMPONENT config)
install(SCRIPT ${pstorage_pkg}/install_config.cmake COMPONENT config)

# The .deb: `make deb`, or `cpack -G DEB` in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr. Holds the "runtime" component only.
set(PSTORAGE_DEB_MAINTAINER "PStorage maintainers <maintainers@pstorage.invalid>"
    CACHE STRING "Maintainer field of the .deb")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pstorage)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "storage array in software with a REST API")
set(CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_BINARY_DIR};pstorage;runtime;/")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${PSTORAGE_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# The body; CPack puts the summary above it and indents every line.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "pstorage serve runs thin-provisioned volumes with snapshots, clones and
inline data reduction (dedupe, LZ4) on a simulated flash device written
through io_uring, plus key-value projects, behind a REST API with API keys
and Prometheus metrics. The same binary is a command-line client.

Installs pstorage.service (not enabled or started); the configuration is
/etc/pstorage/config.json and the data lives in /var/lib/pstorage.")
find_program(PSTORAGE_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(PSTORAGE_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd | adduser")  # shlibdeps' list is appended
else()
  string(CONCAT CPACK_DEBIAN_PACKAGE_DEPENDS "libpistache0, liburing2, libxxhash0, "
         "liblz4-1, libzstd1, libssl3, libstdc++6, libc6, systemd | adduser")
endif()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${pstorage_pkg_out}/postinst ${pstorage_pkg_out}/prerm ${pstorage_pkg_out}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
