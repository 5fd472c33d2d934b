# Installed files beyond the binary, and the Debian package (cd build && cpack -G DEB).
# Included from CMakeLists.txt after the ecaphost target.

# The man page, gzipped as Debian installs them (-n: no name or time stamp, reproducible).
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/ecaphost.1.gz
  COMMAND gzip -9n -c ${CMAKE_SOURCE_DIR}/docs/ecaphost.1 > ${CMAKE_BINARY_DIR}/ecaphost.1.gz
  DEPENDS ${CMAKE_SOURCE_DIR}/docs/ecaphost.1
  COMMENT "Compressing the man page")
add_custom_target(manpage ALL DEPENDS ${CMAKE_BINARY_DIR}/ecaphost.1.gz)
install(FILES ${CMAKE_BINARY_DIR}/ecaphost.1.gz DESTINATION share/man/man1)
install(FILES scripts/completion/ecaphost.bash DESTINATION share/bash-completion/completions
        RENAME ecaphost)
install(DIRECTORY scripts/deploy/ DESTINATION share/ecaphost/deploy)

set(CPACK_PACKAGE_NAME ecaphost)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "ecaphost maintainers <maintainers@users.noreply.b-seed-8d10b92e.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "run EnergyCAP workflows as sandboxed Lua scripts")
set(CPACK_PACKAGE_DESCRIPTION "ecaphost embeds Lua 5.4 and binds the EnergyCAP REST API as native Lua
functions. Every script runs in a sandbox with memory and time limits and
no access to the API key. It has a REPL, a scheduler (ecaphost schedule)
with a systemd unit, a built-in simulator of the API for trying scripts
without an account, example workflows and deployment files for systemd
and Kubernetes.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)                # ecaphost_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)                 # Depends from dpkg-shlibdeps (dpkg-dev)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates") # TLS verification is always on
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
