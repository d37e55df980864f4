// File: tests/examples/response_field.h
//
// The value of one field in an HTTP response head, for the tests of
// file_server's responses.
#ifndef CONET_TESTS_EXAMPLES_RESPONSE_FIELD_H_
#define CONET_TESTS_EXAMPLES_RESPONSE_FIELD_H_

#include <string>

namespace conet::http {

// The value of `name` in `response` (its head, or all of it), "" if absent.
inline std::string FieldOf(const std::string& response, const std::string& name) {
  const size_t at = response.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  const size_t start = at + name.size() + 4;
  return response.substr(start, response.find("\r\n", start) - start);
}

}  // namespace conet::http

#endif  // CONET_TESTS_EXAMPLES_RESPONSE_FIELD_H_
