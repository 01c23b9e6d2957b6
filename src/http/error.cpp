#include <sluice/http/error.hpp>

#include <utility>

namespace sluice::http {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::invalid_request:
      return "invalid_request";
    case ErrorKind::resolve:
      return "resolve";
    case ErrorKind::connect:
      return "connect";
    case ErrorKind::proxy:
      return "proxy";
    case ErrorKind::tls_handshake:
      return "tls_handshake";
    case ErrorKind::tls_certificate:
      return "tls_certificate";
    case ErrorKind::timeout:
      return "timeout";
    case ErrorKind::connection_closed:
      return "connection_closed";
    case ErrorKind::malformed_response:
      return "malformed_response";
    case ErrorKind::response_too_large:
      return "response_too_large";
  }
  return "unknown";
}

std::string_view to_string(Delivery delivery) {
  return delivery == Delivery::not_sent ? "not_sent" : "maybe_delivered";
}

namespace {

std::string format_message(ErrorKind kind, Delivery delivery, std::string const& host, std::string const& operation,
                           std::string const& detail) {
  std::string message = "http request";
  if (!operation.empty()) {
    message += " '" + operation + "'";
  }
  message += " to " + (host.empty() ? std::string("(no host)") : host) + " failed (";
  message += to_string(kind);
  message += ", ";
  message += to_string(delivery);
  message += "): " + detail;
  return message;
}

}  // namespace

HttpError::HttpError(ErrorKind kind, Delivery delivery, std::string host, std::string operation,
                     boost::system::error_code cause, std::string const& detail)
    : std::runtime_error(format_message(kind, delivery, host, operation, detail)),
      kind_(kind),
      delivery_(delivery),
      host_(std::move(host)),
      operation_(std::move(operation)),
      cause_(cause) {}

}  // namespace sluice::http
