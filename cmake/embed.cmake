# Turns text files into a C source of byte arrays, so the installed binary carries its Lua
# sources and demo data with it. Invoked as:
#   cmake -DOUT=embedded.c -DROOT=<src> -DFILES="a;b" -P embed.cmake
set(body "#include <stddef.h>\n#include \"embedded.h\"\n\n")
set(table "const struct embedded_file embedded_files[] = {\n")
set(i 0)
foreach(f IN LISTS FILES)
  file(READ "${ROOT}/${f}" hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR n "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" hex "${hex}")
  string(APPEND body "static const char file${i}[] = {\n${hex}0x00};\n")
  string(APPEND table "    {\"${f}\", file${i}, ${n}},\n")
  math(EXPR i "${i} + 1")
endforeach()
string(APPEND table "    {NULL, NULL, 0},\n};\n")
file(WRITE "${OUT}.tmp" "${body}\n${table}")
file(RENAME "${OUT}.tmp" "${OUT}")
