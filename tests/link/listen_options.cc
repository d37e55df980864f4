#include "net/listen_options.h"

int main() {
  conet::ListenOptions options{.backlog = 16, .unix_mode = 0600};
  options.allowed_uids.push_back(0);
  return options.backlog == 16 && options.allowed_uids.size() == 1 ? 0 : 1;
}
