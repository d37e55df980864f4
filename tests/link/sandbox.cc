#include "ipc/sandbox.h"

int main() {
  // Off applies nothing: the test process stays as it was.
  absl::StatusOr<conet::ipc::SandboxMode> mode = conet::ipc::ParseSandboxMode("off");
  if (!mode.ok()) return 1;
  absl::StatusOr<conet::ipc::SandboxReport> report =
      conet::ipc::ApplySandbox(conet::ipc::WorkerSandbox(), *mode);
  return report.ok() && report->ToString() == "sandbox: off" && conet::ipc::LandlockAbi() >= 0 ? 0
                                                                                               : 1;
}
