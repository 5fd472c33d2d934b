# Runs one libFuzzer target for a bounded time over a copy of its seed corpus (CTest fuzz/<t>).
#   cmake -DFUZZER=<exe> -DSEEDS=<source corpus dir> -DCORPUS=<build-tree corpus dir>
#         -DSECONDS=<n> [-DDICT=<file>] -DARTIFACTS=<dir> -P run_fuzzer.cmake
# The source corpus is only read: the seeds are copied into CORPUS (inputs found by earlier runs
# stay there) and libFuzzer writes new inputs and crash files in the build tree only.
foreach(v FUZZER SEEDS CORPUS SECONDS ARTIFACTS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_fuzzer.cmake: ${v} not set")
  endif()
endforeach()
file(MAKE_DIRECTORY ${CORPUS} ${ARTIFACTS})
file(GLOB seeds ${SEEDS}/*)
if(seeds)
  file(COPY ${seeds} DESTINATION ${CORPUS})
endif()
set(args -max_total_time=${SECONDS} -print_final_stats=1 -artifact_prefix=${ARTIFACTS}/)
if(DEFINED DICT AND NOT DICT STREQUAL "")
  list(APPEND args -dict=${DICT})
endif()
execute_process(COMMAND ${FUZZER} ${args} ${CORPUS} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); reproducers in ${ARTIFACTS}")
endif()
