# Every dependency comes from a Debian package; see README "Dependencies".
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

# CAF 0.17 ships no CMake config: make imported targets by hand.
find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
find_library(CAF_CORE_LIB caf_core REQUIRED)
find_library(CAF_IO_LIB caf_io REQUIRED)
find_library(CAF_OPENSSL_LIB caf_openssl REQUIRED)
add_library(caf::core SHARED IMPORTED)
set_target_properties(caf::core PROPERTIES IMPORTED_LOCATION ${CAF_CORE_LIB}
  INTERFACE_INCLUDE_DIRECTORIES ${CAF_INCLUDE_DIR} INTERFACE_LINK_LIBRARIES Threads::Threads)
add_library(caf::io SHARED IMPORTED)
set_target_properties(caf::io PROPERTIES IMPORTED_LOCATION ${CAF_IO_LIB}
  INTERFACE_LINK_LIBRARIES caf::core)
add_library(caf::openssl SHARED IMPORTED)
set_target_properties(caf::openssl PROPERTIES IMPORTED_LOCATION ${CAF_OPENSSL_LIB}
  INTERFACE_LINK_LIBRARIES caf::io)

find_package(OpenSSL 3 REQUIRED)
find_package(fmt REQUIRED)          # before restinio: its target links fmt::fmt
find_package(restinio REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(Protobuf REQUIRED)
find_package(GTest REQUIRED)
pkg_check_modules(PQXX REQUIRED IMPORTED_TARGET libpqxx)
# The node's allocator: every request is allocated on one thread and freed on another (HTTP thread
# <-> CAF workers), which glibc's arenas serve badly; bench/PROFILE-gateway.md has the figures.
pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)

# hiredis' CMake file defines no target and its .pc names the wrong libdir.
find_path(HIREDIS_INCLUDE_DIR hiredis/hiredis.h REQUIRED)
find_library(HIREDIS_LIB hiredis REQUIRED)
add_library(hiredis::hiredis SHARED IMPORTED)
set_target_properties(hiredis::hiredis PROPERTIES IMPORTED_LOCATION ${HIREDIS_LIB}
  INTERFACE_INCLUDE_DIRECTORIES ${HIREDIS_INCLUDE_DIR})

# hnswlib is header-only.
find_path(HNSWLIB_INCLUDE_DIR hnswlib/hnswlib.h REQUIRED)
add_library(hnswlib::hnswlib INTERFACE IMPORTED)
set_target_properties(hnswlib::hnswlib PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${HNSWLIB_INCLUDE_DIR})
