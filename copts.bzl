"""Compiler flags for conet's own code, in one place (used by every target)."""

# Warnings are errors in the project's own code. External repositories are
# system libraries and are never compiled here.
CONET_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wnon-virtual-dtor",
    "-Wno-missing-field-initializers",
]

CONET_TEST_COPTS = CONET_COPTS + [
    # gtest's TYPED_TEST and friends trip this one.
    "-Wno-unused-parameter",
]
