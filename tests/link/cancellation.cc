#include "net/cancellation.h"

int main() { return conet::Within(absl::Seconds(1)).has_deadline() ? 0 : 1; }
