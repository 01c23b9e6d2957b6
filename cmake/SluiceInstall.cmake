# Installs headers, libraries and a package config, so that a consumer
# project can write find_package(sluice) and link sluice::runtime & co.
include(CMakePackageConfigHelpers)

install(DIRECTORY include/sluice DESTINATION include)
install(EXPORT sluiceTargets
  NAMESPACE sluice::
  DESTINATION lib/cmake/sluice)

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/sluiceConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sluiceConfig.cmake
  INSTALL_DESTINATION lib/cmake/sluice)
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/sluiceConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/sluiceConfig.cmake
  ${PROJECT_BINARY_DIR}/sluiceConfigVersion.cmake
  cmake/SluiceDependencies.cmake
  DESTINATION lib/cmake/sluice)
