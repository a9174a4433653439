# cmake -DDIR=<folder> -DFORBIDDEN=<path prefix> -P no_includes.cmake
# Fails, naming each file and line, when a source under DIR includes a header under FORBIDDEN
# ("actors/"), however the include is spelled: quotes or angle brackets, spaces after '#', a
# relative "../" path.
if(NOT DIR OR NOT FORBIDDEN)
  message(FATAL_ERROR "usage: cmake -DDIR=<folder> -DFORBIDDEN=<prefix> -P no_includes.cmake")
endif()
file(GLOB_RECURSE sources "${DIR}/*.cpp" "${DIR}/*.hpp" "${DIR}/*.h" "${DIR}/*.ipp" "${DIR}/*.cc")
if(NOT sources)
  message(FATAL_ERROR "no sources under ${DIR}: the guard would pass without looking")
endif()
set(offences "")
foreach(source ${sources})
  file(STRINGS "${source}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"](\\.\\./)*${FORBIDDEN}")
  foreach(line ${lines})
    string(APPEND offences "\n  ${source}: ${line}")
  endforeach()
endforeach()
if(offences)
  message(FATAL_ERROR "${DIR} must not include ${FORBIDDEN} (move what it needs behind a message "
                      "or into runtime/domain):${offences}")
endif()
list(LENGTH sources count)
message(STATUS "${count} files under ${DIR}, none includes ${FORBIDDEN}")
