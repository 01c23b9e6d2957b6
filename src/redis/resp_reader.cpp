#include "redis/resp_reader.hpp"

#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <hiredis/hiredis.h>

#include <sluice/redis/error.hpp>

namespace sluice::redis::detail {
namespace {

struct FreeReply {
  void operator()(void* reply) const { freeReplyObject(reply); }
};

Reply convert(const redisReply& reply) {
  switch (reply.type) {
    case REDIS_REPLY_STRING:
      return Reply::make_bulk_string(std::string(reply.str, reply.len));
    case REDIS_REPLY_STATUS:
      return Reply::make_simple_string(std::string(reply.str, reply.len));
    case REDIS_REPLY_ERROR:
      return Reply::make_error(std::string(reply.str, reply.len));
    case REDIS_REPLY_INTEGER:
      return Reply::make_integer(reply.integer);
    case REDIS_REPLY_ARRAY: {
      std::vector<Reply> elements;
      elements.reserve(reply.elements);
      for (std::size_t i = 0; i < reply.elements; ++i) {
        elements.push_back(convert(*reply.element[i]));
      }
      return Reply::make_array(std::move(elements));
    }
    case REDIS_REPLY_NIL:
    default:
      return Reply::make_nil();
  }
}

redisReader* create_reader() {
  redisReader* reader = redisReaderCreate();
  if (reader == nullptr) {
    throw std::bad_alloc();
  }
  return reader;
}

}  // namespace

RespReader::RespReader() : reader_(create_reader()) {}

RespReader::~RespReader() {
  if (reader_ != nullptr) {
    redisReaderFree(reader_);
  }
}

RespReader::RespReader(RespReader&& other) noexcept : reader_(std::exchange(other.reader_, nullptr)) {}

RespReader& RespReader::operator=(RespReader&& other) noexcept {
  if (this != &other) {
    if (reader_ != nullptr) {
      redisReaderFree(reader_);
    }
    reader_ = std::exchange(other.reader_, nullptr);
  }
  return *this;
}

void RespReader::feed(std::string_view bytes) {
  if (reader_ == nullptr) {
    reader_ = create_reader();
  }
  if (redisReaderFeed(reader_, bytes.data(), bytes.size()) != REDIS_OK) {
    throw Error(Errc::protocol_error, std::string("redis reply parser: ") + reader_->errstr);
  }
}

std::optional<Reply> RespReader::next() {
  if (reader_ == nullptr) {
    return std::nullopt;
  }
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
    throw Error(Errc::protocol_error, std::string("redis reply parser: ") + reader_->errstr);
  }
  if (raw == nullptr) {
    return std::nullopt;
  }
  std::unique_ptr<void, FreeReply> owned(raw);
  return convert(*static_cast<const redisReply*>(raw));
}

void RespReader::reset() {
  if (reader_ != nullptr) {
    redisReaderFree(reader_);
  }
  reader_ = create_reader();
}

}  // namespace sluice::redis::detail
