# Installation layout and the Debian package (`make deb`: the `deb` target runs CPack's DEB generator).
# Man pages and completion come from the binary itself (`docs` target); neither target is part of ALL,
# so `make build` / `make run` never build them.

set(EXITPOOL_DOCS_DIR ${CMAKE_BINARY_DIR}/docs)
configure_file(${CMAKE_SOURCE_DIR}/packaging/debian/changelog.in ${EXITPOOL_DOCS_DIR}/changelog @ONLY)
set(exitpool_doc_outputs
  ${EXITPOOL_DOCS_DIR}/man/exitpool.1.gz ${EXITPOOL_DOCS_DIR}/man/exitpool-serve.1.gz
  ${EXITPOOL_DOCS_DIR}/man/exitpool-fetch.1.gz ${EXITPOOL_DOCS_DIR}/man/exitpool-check.1.gz
  ${EXITPOOL_DOCS_DIR}/man/exitpool-crawl.1.gz ${EXITPOOL_DOCS_DIR}/man/exitpool-bench.1.gz
  ${EXITPOOL_DOCS_DIR}/completion/exitpool ${EXITPOOL_DOCS_DIR}/completion/_exitpool
  ${EXITPOOL_DOCS_DIR}/changelog.gz)
add_custom_command(OUTPUT ${exitpool_doc_outputs}
  COMMAND ${CMAKE_COMMAND} -DEXITPOOL=$<TARGET_FILE:exitpool> -DOUT_DIR=${EXITPOOL_DOCS_DIR}
          -DCHANGELOG=${EXITPOOL_DOCS_DIR}/changelog -P ${CMAKE_SOURCE_DIR}/cmake/render_docs.cmake
  DEPENDS exitpool ${CMAKE_SOURCE_DIR}/cmake/render_docs.cmake ${EXITPOOL_DOCS_DIR}/changelog
  COMMENT "Rendering man pages and shell completion from the CLI definitions"
  VERBATIM)
add_custom_target(docs DEPENDS ${exitpool_doc_outputs})

include(GNUInstallDirs)
install(TARGETS exitpool RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${EXITPOOL_DOCS_DIR}/man/exitpool.1.gz ${EXITPOOL_DOCS_DIR}/man/exitpool-serve.1.gz
              ${EXITPOOL_DOCS_DIR}/man/exitpool-fetch.1.gz ${EXITPOOL_DOCS_DIR}/man/exitpool-check.1.gz
              ${EXITPOOL_DOCS_DIR}/man/exitpool-crawl.1.gz ${EXITPOOL_DOCS_DIR}/man/exitpool-bench.1.gz
        DESTINATION ${CMAKE_INSTALL_DATADIR}/man/man1)
install(FILES ${EXITPOOL_DOCS_DIR}/completion/exitpool DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES ${EXITPOOL_DOCS_DIR}/completion/_exitpool DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
install(FILES README.md docs/ARCHITECTURE.md packaging/debian/copyright ${EXITPOOL_DOCS_DIR}/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/exitpool)
# Absolute: where Debian 12 wants them whatever the prefix.
install(FILES packaging/exitpool.service DESTINATION /lib/systemd/system)
install(FILES packaging/exitpool.toml packaging/pool.txt DESTINATION /etc/exitpool)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME exitpool)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "exitpool maintainers <exitpool@users.noreply.github.com>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "rotating proxy gateway over pools of exit IPs")
# Debian wants description lines under 80 columns.
set(CPACK_PACKAGE_DESCRIPTION
    "exitpool serves HTTP proxy, CONNECT and SOCKS5 on one local port and sends
every connection or request through an exit picked from a pool of upstream
proxies or local addresses: rotation policies, sticky sessions,
country/city/type targeting, retries on another exit, bans per target host,
rate limits and a Prometheus endpoint. The package runs it as a hardened
systemd service on loopback; it also ships the batch fetcher (exitpool
fetch), the crawler (exitpool crawl) and the pool checker (exitpool check).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps; adduser is what postinst runs.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/debian/conffiles ${CMAKE_SOURCE_DIR}/packaging/debian/postinst
    ${CMAKE_SOURCE_DIR}/packaging/debian/prerm ${CMAKE_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)

add_custom_target(deb
  COMMAND ${CMAKE_CPACK_COMMAND} -G DEB --config ${CMAKE_BINARY_DIR}/CPackConfig.cmake
  WORKING_DIRECTORY ${CMAKE_BINARY_DIR}
  COMMENT "Building the Debian package (CPack)"
  USES_TERMINAL
  VERBATIM)
add_dependencies(deb exitpool docs)
