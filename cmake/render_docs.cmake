# Renders the man pages and shell completion from the exitpool binary's CLI definitions (the hidden
# `help-man` / `help-completion` commands), and gzips what Debian wants compressed.
#   cmake -DEXITPOOL=path/to/exitpool -DOUT_DIR=dir -DCHANGELOG=file -P render_docs.cmake
function(run_to file)
  execute_process(COMMAND ${ARGN} OUTPUT_FILE ${file} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${ARGN} failed (${rc})")
  endif()
endfunction()

file(MAKE_DIRECTORY ${OUT_DIR}/man ${OUT_DIR}/completion)
foreach(cmd exitpool serve fetch check crawl bench)
  if(cmd STREQUAL "exitpool")
    set(page exitpool)
  else()
    set(page exitpool-${cmd})
  endif()
  run_to(${OUT_DIR}/man/${page}.1 ${EXITPOOL} help-man ${cmd})
  # -n: no name or time stamp in the gzip header, so that the package is reproducible.
  run_to(${OUT_DIR}/man/${page}.1.gz gzip -9n -c ${OUT_DIR}/man/${page}.1)
endforeach()
run_to(${OUT_DIR}/completion/exitpool ${EXITPOOL} help-completion bash)
run_to(${OUT_DIR}/completion/_exitpool ${EXITPOOL} help-completion zsh)
run_to(${OUT_DIR}/changelog.gz gzip -9n -c ${CHANGELOG})
