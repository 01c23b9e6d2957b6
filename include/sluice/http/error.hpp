#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/system/error_code.hpp>

namespace sluice::http {

/// Category of an HTTP client request failure.
enum class ErrorKind {
  /// The URL or request is invalid (unsupported scheme, no host).
  invalid_request,
  /// The host name could not be resolved, or resolving timed out.
  resolve,
  /// The TCP connection to the server (or the proxy) failed.
  connect,
  /// The proxy rejected the CONNECT request or sent an invalid response.
  proxy,
  /// The TLS handshake failed for a reason other than the certificate.
  tls_handshake,
  /// The server's certificate failed verification (unknown CA, expired,
  /// wrong host name).
  tls_certificate,
  /// The request deadline passed (waiting for a connection, connecting,
  /// sending or receiving).
  timeout,
  /// The connection closed or was reset before the whole response arrived.
  connection_closed,
  /// The response is not valid HTTP/1.1.
  malformed_response,
  /// The response body is larger than ClientOptions::response_body_limit.
  response_too_large,
};

/// Whether the server may have received the request when it failed. Retry
/// logic uses it to decide whether a non-idempotent request may be sent again.
enum class Delivery {
  /// No byte of the request was written, so the server cannot have seen it
  /// and sending it again creates no duplicate.
  not_sent,
  /// Bytes were written: the server may have processed the request.
  maybe_delivered,
};

std::string_view to_string(ErrorKind kind);
std::string_view to_string(Delivery delivery);

/// A failed HTTP client request. The message names the host, the caller's
/// operation label, the kind and the cause, never the full URL (it may carry
/// a bot token).
class HttpError : public std::runtime_error {
 public:
  HttpError(ErrorKind kind, Delivery delivery, std::string host, std::string operation, boost::system::error_code cause,
            std::string const& detail);

  ErrorKind kind() const noexcept { return kind_; }
  Delivery delivery() const noexcept { return delivery_; }
  /// Returns true if the server may have received the request.
  bool maybe_delivered() const noexcept { return delivery_ == Delivery::maybe_delivered; }
  /// Host (and port, if not the scheme's default) the request was for.
  std::string const& host() const noexcept { return host_; }
  /// The caller's operation label (ClientRequest::operation), possibly empty.
  std::string const& operation() const noexcept { return operation_; }
  /// The underlying system, Asio, SSL or Beast error, if there is one.
  boost::system::error_code const& cause() const noexcept { return cause_; }

 private:
  ErrorKind kind_;
  Delivery delivery_;
  std::string host_;
  std::string operation_;
  boost::system::error_code cause_;
};

}  // namespace sluice::http
