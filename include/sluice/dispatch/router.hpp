#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <sluice/dispatch/filter.hpp>
#include <sluice/updates/update_kind.hpp>

namespace sluice::dispatch {

class Context;

/// A handler: a coroutine run for one update. It may throw; see Router.
using Handler = std::function<boost::asio::awaitable<void>(Context&)>;

/// Called with the exception that escaped a handler of a router (or of a
/// nested router without its own hook). Rethrowing passes it to the
/// enclosing router; returning ends the handling of the update.
using ErrorHook = std::function<boost::asio::awaitable<void>(Context&, std::exception_ptr)>;

/// Calls the next layer: the next middleware, or the router's handlers.
using Next = std::function<boost::asio::awaitable<void>()>;

/// Code that wraps the handling of every update a router receives: logging,
/// timing, access checks. It calls `next()` to go on, or returns without
/// calling it to drop the update.
using Middleware = std::function<boost::asio::awaitable<void>(Context&, Next)>;

/// Picks the handler for an update.
///
///     Router router;
///     router.on_command("start", start_handler);
///     router.on_callback_query(filters::callback_data_prefix("vote:"), vote_handler);
///     router.on_message(filters::has_text(), echo_handler);
///
/// Routing: handlers and nested routers are tried in the order they were
/// added. A handler is a candidate when it was registered for the update's
/// kind and its filter matches; the first candidate runs and no other.
/// A nested router is asked in turn and ends the search when one of its
/// handlers ran. An update no handler takes is ignored.
///
/// Errors: an exception that escapes a handler goes to the error hook of
/// the innermost router that has one (`on_error`); without a hook it
/// escapes `route`, and the Bot logs it with the update_id and the handler
/// name. Nothing is retried.
///
/// Build the router before the bot starts; routing does not modify it.
/// Not thread-safe.
class Router {
 public:
  explicit Router(std::string name = "router");

  /// Registers `handler` for updates of `kind` that `filter` matches.
  /// `name` appears in logs; empty names it after the router, kind and
  /// position ("router/message#2").
  Router& on(updates::UpdateKind kind, Filter filter, Handler handler, std::string name = {});

  /// Messages (UpdateKind::message) that `filter` matches.
  Router& on_message(Filter filter, Handler handler, std::string name = {});
  Router& on_message(Handler handler, std::string name = {});
  /// Messages whose text starts with the command `command` (without "/").
  Router& on_command(std::string command, Handler handler, std::string name = {});
  Router& on_command(std::string command, Filter filter, Handler handler, std::string name = {});
  Router& on_edited_message(Filter filter, Handler handler, std::string name = {});
  Router& on_channel_post(Filter filter, Handler handler, std::string name = {});
  Router& on_callback_query(Filter filter, Handler handler, std::string name = {});
  Router& on_callback_query(Handler handler, std::string name = {});
  Router& on_inline_query(Filter filter, Handler handler, std::string name = {});
  Router& on_my_chat_member(Filter filter, Handler handler, std::string name = {});
  Router& on_chat_member(Filter filter, Handler handler, std::string name = {});

  /// Adds `child` after the handlers registered so far; it is asked in its
  /// turn. The child is moved into this router.
  Router& include(Router child);

  /// Sets the error hook of this router (see the class comment).
  Router& on_error(ErrorHook hook);

  /// Adds a middleware that wraps routing inside this router (outer
  /// middleware: it receives every update that reaches the router, handled or
  /// not). Middlewares run in the order they were added.
  Router& use(Middleware middleware);

  /// The update kinds some handler of this router or a nested one is
  /// registered for, as `allowed_updates` names them.
  std::vector<std::string> allowed_updates() const;

  /// Runs the handler for the update of `context`. Returns whether a
  /// handler ran. Sets Context::handler_name before the handler runs.
  /// Errors: as in the class comment. Cancellation: the caller's
  /// cancellation reaches the handler.
  boost::asio::awaitable<bool> route(Context& context) const;

  const std::string& name() const noexcept { return name_; }

 private:
  struct Entry;

  boost::asio::awaitable<bool> route_entries(Context& context) const;
  boost::asio::awaitable<bool> route_with_middleware(Context& context, std::size_t index) const;
  void collect_kinds(std::vector<bool>& kinds) const;

  std::string name_;
  std::vector<std::shared_ptr<const Entry>> entries_;
  std::vector<Middleware> middlewares_;
  ErrorHook error_hook_;
};

}  // namespace sluice::dispatch
