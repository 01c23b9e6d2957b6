#pragma once

#include <string>

namespace sluice::http::test {

/// A test certificate authority and server certificates signed by it,
/// generated with the OpenSSL API when first requested (EC P-256 keys).
struct TestPki {
  std::string ca_cert_pem;
  /// Certificate for DNS:localhost and IP:127.0.0.1.
  std::string server_cert_pem;
  std::string server_key_pem;
  /// Certificate for DNS:wrong.example only, signed by the same CA.
  std::string wrong_name_cert_pem;
  std::string wrong_name_key_pem;
};

/// Returns the process-wide test PKI, creating it on first use.
TestPki const& test_pki();

}  // namespace sluice::http::test
