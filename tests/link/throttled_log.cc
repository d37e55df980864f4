#include "net/throttled_log.h"

int main() {
  conet::ThrottledLog log("throttled_log_links_alone");
  log.Report(absl::InternalError("printed once, as the test expects"));
  return 0;
}
