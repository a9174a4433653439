# sbm_library(NAME SOURCES ... DEPS ...): one static library per folder; includes are
# rooted at the repository so a header is named by where it lives ("actors/speakers/...").
function(sbm_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
  target_link_libraries(${name} PUBLIC ${A_DEPS})
endfunction()
