# Writes OUT (a C++ source defining ops/build_info.hpp) from VERSION, BUILD_TYPE, COMPILER, FLAGS and the
# git revision of SOURCE_DIR. Run by the exitpool_build_info target at every build; OUT is rewritten only
# when its text changes, so an unchanged revision rebuilds nothing.
set(revision "unknown (not built from a git checkout)")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} rev-parse --short=12 HEAD
                  OUTPUT_VARIABLE rev OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc ERROR_QUIET)
  if(rc EQUAL 0 AND rev)
    execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} diff --quiet HEAD -- RESULT_VARIABLE dirty ERROR_QUIET)
    set(revision "${rev}")
    if(NOT dirty EQUAL 0)
      set(revision "${rev}-dirty")
    endif()
  endif()
endif()
string(STRIP "${FLAGS}" FLAGS)
string(REGEX REPLACE "  +" " " FLAGS "${FLAGS}")
set(text "// Written by cmake/build_info.cmake at build time: do not edit.
#include \"ops/build_info.hpp\"

namespace exitpool::ops {

std::string_view build_version() { return \"${VERSION}\"; }

std::string version_text() {
  return R\"exitpool(exitpool ${VERSION}
revision: ${revision}
build type: ${BUILD_TYPE}
compiler: ${COMPILER}, C++20
flags: ${FLAGS})exitpool\";
}

}  // namespace exitpool::ops
")
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
