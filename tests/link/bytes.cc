#include "net/bytes.h"

int main() { return conet::ConstBytes("abc").size() == 3 ? 0 : 1; }
