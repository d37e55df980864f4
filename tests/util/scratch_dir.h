// File: tests/util/scratch_dir.h
//
// ScratchDir: a directory under /tmp made for one test and removed with it,
// with helpers to lay out files, directories, symlinks and FIFOs in it, and
// a descriptor of a subdirectory to serve as a root.
#ifndef CONET_TESTS_UTIL_SCRATCH_DIR_H_
#define CONET_TESTS_UTIL_SCRATCH_DIR_H_

#include <string>

#include "net/unique_fd.h"

namespace conet::test {

class ScratchDir {
 public:
  // Makes the directory; a failure fails the test and aborts it.
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  // The absolute path of `relative` inside (the directory itself for "").
  std::string Path(const std::string& relative = "") const;
  // Each creates `relative` (failing the test if it cannot).
  void MakeDirectory(const std::string& relative) const;
  void WriteFile(const std::string& relative, const std::string& contents) const;
  void MakeSymlink(const std::string& relative, const std::string& target) const;
  void MakeFifo(const std::string& relative) const;
  // Opens the directory `relative` (O_DIRECTORY, read-only).
  UniqueFd OpenDirectory(const std::string& relative) const;

 private:
  std::string path_;
};

}  // namespace conet::test

#endif  // CONET_TESTS_UTIL_SCRATCH_DIR_H_
