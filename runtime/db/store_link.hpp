#pragma once
// How a family's store adapter reaches its server from the actor that uses it. The actor builds
// the link from its own request(...).then(...), so every completion runs in that actor's context,
// with the actor's timeout, whichever adapter is behind the port: PostgreSQL through its
// connection actor, or (simulation only) an in-memory store that is an actor of its own.
#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/message.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <string>
#include <utility>

#include "messages/connections.hpp"
#include "messages/errors.hpp"

namespace sbm::db {

template <class T>
using completion = std::function<void(caf::expected<T>)>;

struct store_link {
  std::function<void(db_statement, completion<db_rows>)> query;
  std::function<void(db_transaction, completion<db_results>)> transact;
  // One request to a server that is an actor (the simulation's stores): `true` or an error.
  std::function<void(const caf::actor&, caf::message, completion<bool>)> call;
};

// How an adapter answers from its server's answer: `read(*in)` over a good one; an error passes
// on as it came, and a row that does not read (read throws) becomes errc::internal.
template <class T, class In, class Read>
void read_into(caf::expected<In>& in, const completion<T>& done, const char* what, Read read) {
  if (!in) return done(std::move(in.error()));
  caf::expected<T> out{caf::error{}};
  try {
    out = read(*in);
  } catch (const std::exception& ex) {
    return done(make_error(errc::internal, std::string("corrupt ") + what + ": " + ex.what()));
  }
  done(std::move(out));
}

// `awaited`: every answer waits in the caller's mailbox ahead of everything else (CAF's await),
// for an actor whose writes must be strictly serialised (a speaker); otherwise `then`.
template <class Handle, class Ok, class Err>
void on_answer(Handle&& h, bool awaited, Ok ok, Err err) {
  if (awaited)
    h.await(std::move(ok), std::move(err));
  else
    h.then(std::move(ok), std::move(err));
}

template <class Self>
store_link make_store_link(Self* self, postgres_actor db, std::chrono::milliseconds timeout, bool awaited = false) {
  store_link link;
  link.query = [self, db, timeout, awaited](db_statement st, completion<db_rows> done) {
    if (!db) return done(make_error(errc::unavailable, "no database configured"));
    on_answer(self->request(db, timeout, query_atom::value, std::move(st)), awaited,
              [done](db_rows& rows) { done(std::move(rows)); }, [done](caf::error& e) { done(std::move(e)); });
  };
  link.transact = [self, db, timeout, awaited](db_transaction tx, completion<db_results> done) {
    if (!db) return done(make_error(errc::unavailable, "no database configured"));
    on_answer(self->request(db, timeout, transact_atom::value, std::move(tx)), awaited,
              [done](db_results& res) { done(std::move(res)); }, [done](caf::error& e) { done(std::move(e)); });
  };
  link.call = [self, timeout, awaited](const caf::actor& server, caf::message msg, completion<bool> done) {
    on_answer(self->request(server, timeout, std::move(msg)), awaited,
              [done](bool ok) { done(ok); }, [done](caf::error& e) { done(std::move(e)); });
  };
  return link;
}

}  // namespace sbm::db
