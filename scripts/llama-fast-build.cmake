# Included by scripts/llama-server.sh into llama.cpp's top-level project (CMAKE_PROJECT_llama_INCLUDE).
# The build compiles C++ with -O1 (most of its time goes into the server, its JSON library, the
# multimodal code and the model graph builders, none of which is a hot loop) and, once every target
# exists, puts -O3 back on ggml's tensor kernels, where inference spends its time.
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR} CALL _switchboard_fast_kernels)
function(_switchboard_fast_kernels)
  foreach(target ggml-base ggml-cpu ggml)
    if(TARGET ${target})
      target_compile_options(${target} PRIVATE -O3)
    endif()
  endforeach()
endfunction()
