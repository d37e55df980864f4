#include "ipc/sealed_memory.h"

int main() {
  absl::StatusOr<conet::UniqueFd> memfd = conet::ipc::CreateSealedMemory("link", "bytes");
  if (!memfd.ok()) return 1;
  absl::StatusOr<conet::ipc::SealedMapping> mapping =
      conet::ipc::MapSealedMemory(std::move(*memfd));
  return mapping.ok() && mapping->bytes() == "bytes" ? 0 : 1;
}
