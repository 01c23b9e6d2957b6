// Sandbox: lifecycle, the HTTP handler and the Bot API route with fault
// injection.

#include <sluice/sandbox/sandbox.hpp>

#include <stdexcept>
#include <utility>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/system/system_error.hpp>

#include <sluice/runtime/logging.hpp>

#include "engine_internal.hpp"
#include "sandbox_impl.hpp"

namespace sluice::sandbox {
namespace asio = boost::asio;

namespace {

// Telegram's front end identifies itself so; bots see the same header.
constexpr char const* kServerName = "nginx/1.18.0";
// Maximum wait of a /sandbox/wait request.
constexpr auto kMaxWait = std::chrono::minutes(10);

std::string nginx_error_page(unsigned status) {
  std::string title = std::to_string(status) + (status == 502   ? " Bad Gateway"
                                                : status == 503 ? " Service Unavailable"
                                                : status == 504 ? " Gateway Time-out"
                                                                : " Internal Server Error");
  return "<html>\r\n<head><title>" + title + "</title></head>\r\n<body>\r\n<center><h1>" + title +
         "</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n";
}

std::string_view header_value(http::Request const& request, boost::beast::http::field field) {
  auto it = request.find(field);
  if (it == request.end()) {
    return {};
  }
  return std::string_view(it->value().data(), it->value().size());
}

}  // namespace

// -------------------------------------------------------- ChangeSignal ----

asio::awaitable<void> ChangeSignal::wait_until(Instant deadline) {
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  waiting_.insert(&timer);
  struct Unregister {
    std::unordered_set<asio::steady_timer*>& set;
    asio::steady_timer* timer;
    ~Unregister() { set.erase(timer); }
  } unregister{waiting_, &timer};
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  auto state = co_await asio::this_coro::cancellation_state;
  if (state.cancelled() != asio::cancellation_type::none) {
    throw boost::system::system_error(asio::error::operation_aborted);
  }
}

void ChangeSignal::notify() {
  for (auto* timer : waiting_) {
    timer->cancel();
  }
}

// ------------------------------------------------------------- Sandbox ----

namespace {

SandboxOptions with_scenario_settings(SandboxOptions options) {
  if (options.scenario) {
    apply_scenario_options(*options.scenario, options.engine);
  }
  return options;
}

}  // namespace

Sandbox::Impl::Impl(asio::any_io_executor executor, SandboxOptions options)
    : executor_(executor),
      options_(with_scenario_settings(std::move(options))),
      log_(runtime::module_logger("sluice.sandbox")),
      engine_(options_.engine),
      lifecycle_(executor, "sandbox-lifecycle"),
      tasks_(executor, "sandbox") {
  if (options_.scenario) {
    apply_scenario_world(*options_.scenario, engine_);
  }
}

Sandbox::Impl::~Impl() = default;

http::Reply Sandbox::Impl::json_reply(unsigned status, std::string body) {
  http::Reply reply;
  reply.response.result(status);
  reply.response.set(boost::beast::http::field::content_type, "application/json");
  reply.response.set(boost::beast::http::field::access_control_allow_origin, "*");
  reply.response.body() = std::move(body);
  reply.response.prepare_payload();
  return reply;
}

asio::awaitable<void> Sandbox::Impl::start() {
  if (started_) {
    throw std::logic_error("Sandbox::start() called twice");
  }
  started_ = true;

  if (!options_.tls_certificate_file.empty() || !options_.tls_private_key_file.empty()) {
    tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    try {
      tls_->use_certificate_chain_file(options_.tls_certificate_file);
      tls_->use_private_key_file(options_.tls_private_key_file, asio::ssl::context::pem);
    } catch (boost::system::system_error const& error) {
      throw std::runtime_error("cannot load TLS certificate " + options_.tls_certificate_file + " or key " +
                               options_.tls_private_key_file + ": " + error.what());
    }
  } else if (options_.tls_self_signed) {
    auto [certificate, key] = make_self_signed_certificate();
    tls_certificate_pem_ = certificate;
    tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    tls_->use_certificate_chain(asio::buffer(certificate));
    tls_->use_private_key(asio::buffer(key), asio::ssl::context::pem);
  }

  http::ServerOptions server_options;
  server_options.address = options_.address;
  server_options.port = options_.port;
  server_options.body_limit = options_.body_limit;
  server_options.tls = tls_.get();
  server_options.server_name = kServerName;
  // Long polls last up to 50 s; keep idle connections longer than that.
  server_options.idle_timeout = std::chrono::seconds(120);
  auto handler = [this](http::Request&& request, http::RequestInfo const& info) -> asio::awaitable<http::Reply> {
    return serve(std::move(request), info);
  };
  server_ = std::make_unique<http::Server>(executor_, server_options, handler);
  server_->listen();

  started_at_ = Clock::now();
  tasks_.spawn("sandbox-server", server_->run());
  tasks_.spawn("sandbox-webhook", run_webhook_dispatcher());
  if (options_.scenario && !options_.scenario->events.empty()) {
    tasks_.spawn("sandbox-scenario", run_scenario_events());
  }
  if (options_.scenario && options_.scenario->simulate && options_.scenario->simulate->users > 0) {
    tasks_.spawn("sandbox-simulation", run_simulation());
  }
  log_->info("sandbox started address={} port={} tls={} bot={}", options_.address, server_->port(), tls_ != nullptr,
             engine_.bot().username);
  co_return;
}

asio::awaitable<void> Sandbox::Impl::stop(std::chrono::milliseconds grace) {
  if (stopping_) {
    co_await wait_stopped();
    co_return;
  }
  stopping_ = true;
  if (server_) {
    server_->stop(grace);
  }
  notify();
  co_await tasks_.close(grace + std::chrono::seconds(1));
  stopped_ = true;
  notify();
  log_->info("sandbox stopped calls={} updates_pushed={} updates_confirmed={}", engine_.stats().calls,
             engine_.stats().updates_pushed, engine_.stats().updates_confirmed);
}

void Sandbox::Impl::request_stop() {
  if (stopping_ || lifecycle_.closed()) {
    return;
  }
  auto task = [](Impl* self) -> asio::awaitable<void> { co_await self->stop(std::chrono::seconds(2)); };
  lifecycle_.spawn("sandbox-stop", task(this));
}

asio::awaitable<void> Sandbox::Impl::wait_stopped() {
  while (!stopped_) {
    co_await changes_.wait_until(Instant::max());
  }
}

asio::awaitable<bool> Sandbox::Impl::wait_for(std::string condition, std::chrono::milliseconds timeout) {
  auto const deadline = Clock::now() + std::min<std::chrono::milliseconds>(timeout, kMaxWait);
  while (true) {
    if (engine_.evaluate_condition(condition)) {
      co_return true;
    }
    if (Clock::now() >= deadline || stopping_) {
      co_return false;
    }
    co_await changes_.wait_until(deadline);
  }
}

std::uint16_t Sandbox::Impl::port() const {
  if (!server_) {
    throw std::logic_error("Sandbox::port() called before start()");
  }
  return server_->port();
}

std::string Sandbox::Impl::base_url() const {
  auto host = options_.address == "0.0.0.0" || options_.address == "::" ? std::string("127.0.0.1") : options_.address;
  if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  }
  return std::string(tls_ ? "https://" : "http://") + host + ":" + std::to_string(port());
}

asio::awaitable<http::Reply> Sandbox::Impl::serve(http::Request request, http::RequestInfo info) {
  (void)info;
  auto target = std::string(request.target());
  auto route = parse_target(target);
  switch (route.kind) {
    case RouteKind::bot_api:
      co_return co_await serve_bot_api(std::move(request), route);
    case RouteKind::control:
      co_return co_await serve_control(std::move(request), route);
    case RouteKind::not_found:
      break;
  }
  co_return json_reply(404, Engine::not_found_reply().body);
}

asio::awaitable<http::Reply> Sandbox::Impl::serve_bot_api(http::Request request, Route route) {
  // The route's views point into serve()'s copy of the target, which lives
  // until this coroutine ends.
  auto decision = engine_.faults().decide(route.method);
  if (decision.delay > std::chrono::milliseconds::zero()) {
    engine_.record_fault(FaultKind::latency);
    // A plain timer: waking every delayed call on each state change would
    // cost O(calls in flight) per request under load.
    asio::steady_timer timer(executor_, decision.delay);
    co_await timer.async_wait(asio::use_awaitable);
  }
  if (decision.failure) {
    engine_.record_fault(*decision.failure);
    switch (*decision.failure) {
      case FaultKind::server_error: {
        if (decision.status == 500) {
          ApiError error(500, "Internal Server Error");
          co_return json_reply(500, error_reply(error).body);
        }
        auto reply = json_reply(decision.status, nginx_error_page(decision.status));
        reply.response.set(boost::beast::http::field::content_type, "text/html");
        co_return reply;
      }
      case FaultKind::reset_before_handling: {
        http::Reply reply;
        reply.action = http::ConnectionAction::reset;
        co_return reply;
      }
      case FaultKind::black_hole: {
        http::Reply reply;
        reply.action = http::ConnectionAction::black_hole;
        co_return reply;
      }
      default:
        break;
    }
  }

  auto content_type = header_value(request, boost::beast::http::field::content_type);
  auto parsed = parse_api_request(route, content_type, request.body());
  if (auto const* error = std::get_if<RequestError>(&parsed)) {
    co_return json_reply(error->status, error_reply(ApiError(static_cast<int>(error->status), error->description)).body);
  }
  auto outcome = engine_.handle(std::get<ApiRequest>(std::move(parsed)), Clock::now());
  notify();

  while (auto const* wait = std::get_if<PollWait>(&outcome)) {
    auto const ticket = wait->ticket;
    if (stopping_) {
      engine_.cancel_poll(ticket);
      outcome = ApiReply{200, R"({"ok":true,"result":[]})"};
      break;
    }
    try {
      co_await changes_.wait_until(wait->deadline);
    } catch (...) {
      engine_.cancel_poll(ticket);
      throw;
    }
    outcome = engine_.resume_poll(ticket, Clock::now());
  }

  auto& api_reply = std::get<ApiReply>(outcome);
  auto const body_size = api_reply.body.size();
  auto reply = json_reply(api_reply.status, std::move(api_reply.body));
  if (decision.failure == FaultKind::reset_after_handling) {
    reply.action = http::ConnectionAction::reset;
  } else if (decision.failure == FaultKind::cut_body) {
    reply.action = http::ConnectionAction::cut_body;
    reply.cut_body_bytes = body_size / 2;
  }
  co_return reply;
}

asio::awaitable<void> Sandbox::Impl::sleep_until(Instant when) {
  while (Clock::now() < when && !stopping_) {
    co_await changes_.wait_until(when);
  }
}

// --------------------------------------------------------- public API ----

Sandbox::Sandbox(asio::any_io_executor executor, SandboxOptions options)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(options))) {}

Sandbox::~Sandbox() = default;

asio::awaitable<void> Sandbox::start() {
  co_await impl_->start();
}

asio::awaitable<void> Sandbox::stop(std::chrono::milliseconds grace) {
  co_await impl_->stop(grace);
}

asio::awaitable<void> Sandbox::wait_stopped() {
  co_await impl_->wait_stopped();
}

std::uint16_t Sandbox::port() const {
  return impl_->port();
}

std::string Sandbox::base_url() const {
  return impl_->base_url();
}

std::string const& Sandbox::tls_certificate_pem() const {
  return impl_->tls_certificate_pem_;
}

Engine& Sandbox::engine() {
  return impl_->engine_;
}

std::int64_t Sandbox::push_message(std::int64_t user_id, std::int64_t chat_id, std::string_view text) {
  auto id = impl_->engine_.push_user_message(user_id, chat_id, text, Clock::now());
  impl_->notify();
  return id;
}

std::optional<std::int64_t> Sandbox::push_update(boost::json::object update) {
  auto id = impl_->engine_.push_update(std::move(update), Clock::now());
  impl_->notify();
  return id;
}

void Sandbox::notify() {
  impl_->notify();
}

asio::awaitable<bool> Sandbox::wait_for(std::string condition, std::chrono::milliseconds timeout) {
  co_return co_await impl_->wait_for(std::move(condition), timeout);
}

}  // namespace sluice::sandbox
