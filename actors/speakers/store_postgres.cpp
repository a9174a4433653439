// The speakers store over PostgreSQL: with speaker_rows.cpp (the column list and its parser,
// shared with the outbox relay) the only file with the family's SQL. Every value is bound, never
// spliced; times are the database's now().
#include <algorithm>
#include <stdexcept>
#include <utility>

#include "actors/speakers/store.hpp"
#include "messages/cluster.hpp"
#include "messages/errors.hpp"
#include "runtime/db/fence.hpp"
#include "runtime/db/idempotency.hpp"
#include "runtime/db/rows.hpp"

namespace sbm::speakers {

namespace {

constexpr const char* keys_table = "speakers.idempotency_keys";

db_statement history_insert(const std::string& speaker_id, const history_line& h) {
  return {"INSERT INTO speakers.bucket_history "
          "(speaker_id, kind, previous_bucket, new_bucket, reason, actor) "
          "VALUES ($1, $2, $3, $4, $5, $6)",
          {speaker_id, h.kind, h.previous_bucket, h.new_bucket, h.reason, h.actor},
          1};
}

// The event is built from the committed row later (outbox relay), so its timestamp is the commit
// transaction's time, the same instant the history row carries.
db_statement outbox_insert(const speaker_change& c, const bucket_move& m) {
  return {"INSERT INTO speakers.outbox (topic, payload) VALUES ($1, jsonb_build_object("
          "'speaker_id', $2::text, 'client_id', $3::text, 'previous_bucket', $4::text, "
          "'new_bucket', $5::text, 'reason', $6::text))",
          {std::string(bucket_changed_topic), c.speaker_id, c.client_id, m.previous_bucket, m.new_bucket,
           m.reason},
          1};
}

// The audit entry of a pin or unpin goes into the outbox with the change itself, so no change is
// ever committed without its entry; the relay hands it to the audit log, keyed by this row's id.
db_statement audit_insert(const speaker_change& c, const audit_line& a) {
  auto by = a.by;
  if (by.actor_kind.empty()) by.actor_kind = by.actor.rfind("service:", 0) == 0 ? "service" : "user";
  return {"INSERT INTO speakers.outbox (topic, payload) VALUES ($1, jsonb_build_object("
          "'actor', $2::text, 'actor_kind', $3::text, 'action', $4::text, 'target', $5::text, "
          "'peer', $6::text, 'speaker_id', $5::text, 'bucket', $7::text, 'reason', $8::text, "
          "'client_id', $9::text))",
          {std::string(audit_topic), by.actor, by.actor_kind, a.action, c.speaker_id, by.peer, a.bucket,
           a.reason, c.client_id},
          1};
}

// The update goes first so RETURNING is always result 0.
db_statement versioned_update(const speaker_change& c) {
  std::string assignments =
    "bucket = $3, bucket_changes = bucket_changes + $4, version = version + 1, updated_at = now()";
  std::vector<caf::optional<std::string>> params{c.speaker_id, std::to_string(c.version), c.bucket,
                                                 std::to_string(c.bucket_changes)};
  if (c.sample) {
    assignments += ", samples_total = samples_total + 1, window_size = $5, window_mean = $6";
    params.push_back(std::to_string(c.window_size));
    params.push_back(sql_number(c.window_mean));
  } else if (c.pin == pin_change::pin) {
    assignments += ", pinned = true, pin_reason = $5, pinned_by = $6, pinned_at = now()";
    params.push_back(c.pin_reason);
    params.push_back(c.pinned_by);
  } else if (c.pin == pin_change::unpin) {
    assignments += ", pinned = false, pin_reason = '', pinned_by = '', pinned_at = NULL";
  }
  return {"UPDATE speakers.speakers SET " + assignments +
            " WHERE speaker_id = $1 AND version = $2 RETURNING "
            "(extract(epoch from updated_at) * 1000)::bigint, "
            "coalesce((extract(epoch from pinned_at) * 1000)::bigint, 0)",
          std::move(params), 1};
}

// A value a statement returned with RETURNING, if it is there and well formed. The write has
// committed by then, so a surprise here must not turn into a failed answer.
std::int64_t returned_int(const db_results& r, std::size_t statement, std::size_t column) {
  if (statement >= r.results.size() || r.results[statement].rows.empty()) return 0;
  try {
    return db::int_column(r.results[statement].rows.front(), column);
  } catch (const std::exception&) {
    return 0;
  }
}

caf::error version_moved(const std::string& id) {
  return make_error(errc::conflict, "speaker " + id + " was changed by another writer meanwhile; retry");
}

// What each outbox target reads and which column says it has a row.
struct outbox_columns {
  const char* topic;
  const char* stamp_column;
  const char* select_columns;
  outbox_entry (*read)(const db_row&);
};

constexpr const char* event_columns =
  "id, payload->>'speaker_id', payload->>'client_id', payload->>'previous_bucket', "
  "payload->>'new_bucket', payload->>'reason', (extract(epoch from created_at) * 1000)::bigint";

constexpr const char* audit_columns =
  "id, payload->>'actor', payload->>'actor_kind', payload->>'action', payload->>'target', "
  "payload->>'peer', jsonb_build_object('speaker_id', payload->'speaker_id', 'bucket', "
  "payload->'bucket', 'reason', payload->'reason')::text, payload->>'client_id', "
  "(extract(epoch from created_at) * 1000)::bigint";

outbox_entry event_from_row(const db_row& row) {
  outbox_entry item;
  auto& ev = item.event;
  item.id = ev.event_id = int_column(row, 0);
  ev.speaker_id = text_column(row, 1);
  ev.client_id = text_column(row, 2);
  ev.previous_bucket = text_column(row, 3);
  ev.new_bucket = text_column(row, 4);
  ev.reason = text_column(row, 5);
  ev.timestamp_ms = item.created_ms = int_column(row, 6);
  return item;
}

outbox_entry audit_from_row(const db_row& row) {
  outbox_entry item;
  auto& r = item.record;
  item.id = int_column(row, 0);
  r.actor = text_column(row, 1);
  if (r.actor.empty()) r.actor = "unknown";  // the log takes no entry without one
  r.actor_kind = text_column(row, 2);
  r.action = text_column(row, 3);
  r.target = text_column(row, 4);
  r.peer = text_column(row, 5);
  r.detail = text_column(row, 6);
  r.client_id = text_column(row, 7);  // NULL (rows written before scoping) reads as ""
  item.created_ms = int_column(row, 8);
  r.outcome = "success";
  r.status = 200;
  r.source_key = "speakers.outbox:" + std::to_string(item.id);
  return item;
}

outbox_columns columns_of(outbox_target t) {
  switch (t) {
    case outbox_target::bus: return {bucket_changed_topic, "delivered_at", event_columns, event_from_row};
    case outbox_target::stream: return {bucket_changed_topic, "stream_published_at", event_columns, event_from_row};
    case outbox_target::audit: break;
  }
  return {audit_topic, "audited_at", audit_columns, audit_from_row};
}

class postgres_store final : public store {
 public:
  void load(const db::store_link& via, const std::string& speaker_id, std::uint32_t window, fence_epoch epoch,
            completion<loaded_speaker> done) const override {
    // The row and its window in one statement (one snapshot, one round trip): an activation is
    // the first request of an idle speaker, so its caller waits for every round trip of it.
    static const std::string sql =
      std::string("SELECT ") + speaker_columns + ", (SELECT array_to_json(array_agg(errors_per_100_words "
      "ORDER BY id))::text FROM (SELECT id, errors_per_100_words FROM speakers.quality_samples "
      "WHERE speaker_id = $1 ORDER BY id DESC LIMIT $2) newest) FROM speakers.speakers WHERE speaker_id = $1";
    db_statement read{sql, {speaker_id, std::to_string(window)}, -1};
    auto rows_of = [window](const db_rows& rows) {
      loaded_speaker out;
      if (rows.rows.empty()) return out;
      const db_row& row = rows.rows.front();
      out.row = speaker_from_row(row, window);
      out.window = db::number_array_column(row, speaker_column_count);
      return out;
    };
    if (!epoch) {
      // Alone, without BEGIN/COMMIT: nothing is written outside a cluster.
      read.read_only = true;
      via.query(std::move(read), [done, rows_of](caf::expected<db_rows> r) {
        db::read_into<loaded_speaker>(r, done, "speaker row", rows_of);
      });
      return;
    }
    db_transaction tx;
    tx.statements.push_back(std::move(read));
    tx.statements.push_back(db::fence_statement(speaker_id, *epoch));
    via.transact(std::move(tx), [done, rows_of](caf::expected<db_results> r) {
      db::read_into<loaded_speaker>(r, done, "speaker row", [&rows_of](const db_results& res) {
        if (res.results.empty()) throw std::runtime_error("expected a result set");
        return rows_of(res.results.front());
      });
    });
  }

  void save(const db::store_link& via, const speaker_change& c, const request_context& ctx, fence_epoch epoch,
            completion<change_saved> done) const override {
    db_transaction tx;
    tx.until = ctx.until;
    tx.statements.push_back(versioned_update(c));
    std::int32_t sample_statement = -1;
    if (c.sample) {
      // ON CONFLICT DO NOTHING + expect_rows 1: a job already counted rolls everything back as a
      // conflict, whatever SQLSTATE mapping the connection actor uses.
      sample_statement = static_cast<std::int32_t>(tx.statements.size());
      tx.statements.push_back({"INSERT INTO speakers.quality_samples "
                               "(speaker_id, job_id, errors_per_100_words, actor) VALUES ($1, $2, $3, $4) "
                               "ON CONFLICT (speaker_id, job_id) DO NOTHING",
                               {c.speaker_id, c.sample->job_id, sql_number(c.sample->errors_per_100_words),
                                c.sample->actor},
                               1});
    }
    for (const auto& h : c.history) tx.statements.push_back(history_insert(c.speaker_id, h));
    if (c.audit) tx.statements.push_back(audit_insert(c, *c.audit));
    for (const auto& m : c.moves) tx.statements.push_back(outbox_insert(c, m));
    const auto key_statement = static_cast<std::int32_t>(tx.statements.size());
    if (ctx.keyed())
      tx.statements.push_back(db::idempotency::store(keys_table, ctx, 0, speaker_answer_sql(), {c.speaker_id}));
    if (epoch) tx.statements.push_back(db::fence_statement(c.speaker_id, *epoch));
    via.transact(std::move(tx), [done, ctx, sample_statement, key_statement, id = c.speaker_id,
                                 job = c.sample ? c.sample->job_id : std::string()](caf::expected<db_results> r) {
      if (r) return done(change_saved{returned_int(*r, 0, 0), returned_int(*r, 0, 1)});
      // Whether it committed cannot be told: the caller hears so, unchanged.
      if (outcome_unknown(r.error())) return done(std::move(r.error()));
      if (code_of(r.error()) != errc::conflict) return done(db::failure(r.error()));
      const auto statement = info_of(r.error()).statement;
      if (statement == key_statement) return done(db::idempotency::in_progress(ctx));
      if (statement == sample_statement)
        return done(make_error(errc::duplicate, "job " + job + " is already counted for speaker " + id));
      done(version_moved(id));
    });
  }

  void create(const db::store_link& via, const new_speaker& s, const request_context& ctx, fence_epoch epoch,
              completion<speaker_record> done) const override {
    db_transaction tx;
    tx.until = ctx.until;
    tx.statements.push_back({std::string("INSERT INTO speakers.speakers "
                                         "(speaker_id, client_id, display_name, bucket) "
                                         "VALUES ($1, $2, $3, $4) ON CONFLICT (speaker_id) DO NOTHING "
                                         "RETURNING ") +
                               speaker_columns,
                             {s.speaker_id, s.client_id, s.display_name, s.bucket},
                             1});
    tx.statements.push_back({"INSERT INTO speakers.bucket_history "
                             "(speaker_id, kind, previous_bucket, new_bucket, reason, actor) "
                             "VALUES ($1, 'register', NULL, $2, 'registered', $3)",
                             {s.speaker_id, s.bucket, s.actor},
                             1});
    const auto key_statement = static_cast<std::int32_t>(tx.statements.size());
    if (ctx.keyed())
      tx.statements.push_back(db::idempotency::store(keys_table, ctx, 0, speaker_answer_sql(), {s.speaker_id}));
    if (epoch) {
      tx.statements.push_back(db::fence_statement(s.speaker_id, *epoch));
      tx.statements.push_back(db::release_statement(s.speaker_id, *epoch));
    }
    via.transact(std::move(tx), [done, ctx, key_statement, id = s.speaker_id](caf::expected<db_results> r) {
      if (!r && outcome_unknown(r.error())) return done(std::move(r.error()));
      if (!r && code_of(r.error()) == errc::conflict)
        return done(info_of(r.error()).statement == key_statement
                      ? db::idempotency::in_progress(ctx)
                      : make_error(errc::duplicate, "speaker " + id + " is already registered"));
      if (!r) return done(db::failure(r.error()));
      db::read_into<speaker_record>(r, done, "speaker row", [](const db_results& res) {
        if (res.results.empty() || res.results[0].rows.empty())
          throw std::runtime_error("INSERT ... RETURNING gave no row");
        return speaker_from_row(res.results[0].rows.front(), 0);
      });
    });
  }

  void find_key(const db::store_link& via, const request_context& ctx, std::chrono::seconds retention,
                completion<keyed_answer> done) const override {
    via.query(db::idempotency::lookup(keys_table, ctx, retention), [done, ctx](caf::expected<db_rows> rows) {
      if (!rows) return done(db::failure(rows.error()));
      db::read_into<keyed_answer>(rows, done, "stored answer", [&ctx](const db_rows& in) {
        auto found = db::idempotency::judge(in, ctx);
        keyed_answer out{found.v, std::move(found.stored), {}};
        if (out.v == db::idempotency::verdict::replay && out.stored.outcome == 0)
          out.view = speaker_from_answer(out.stored.answer, 0).view;
        return out;
      });
    });
  }

  void history(const db::store_link& via, const std::string& speaker_id, std::uint32_t limit,
               completion<std::vector<history_entry>> done) const override {
    via.query({"SELECT id, kind, coalesce(previous_bucket, ''), new_bucket, reason, actor, "
               "(extract(epoch from created_at) * 1000)::bigint FROM (SELECT * FROM speakers.bucket_history "
               "WHERE speaker_id = $1 ORDER BY id DESC LIMIT $2) newest ORDER BY id",
               {speaker_id, std::to_string(limit)},
               -1},
              [done](caf::expected<db_rows> rows) {
                if (!rows) return done(db::failure(rows.error()));
                db::read_into<std::vector<history_entry>>(rows, done, "history row", [](const db_rows& in) {
                  std::vector<history_entry> out;
                  for (const db_row& row : in.rows) {
                    history_entry e;
                    e.id = db::int_column(row, 0);
                    e.kind = db::text_column(row, 1);
                    e.previous_bucket = db::text_column(row, 2);
                    e.new_bucket = db::text_column(row, 3);
                    e.reason = db::text_column(row, 4);
                    e.actor = db::text_column(row, 5);
                    e.at_ms = db::int_column(row, 6);
                    out.push_back(std::move(e));
                  }
                  return out;
                });
              });
  }

  void list(const db::store_link& via, const list_filter& f,
            completion<std::vector<speaker_record>> done) const override {
    via.query({std::string("SELECT ") + speaker_columns +
                 " FROM speakers.speakers WHERE ($1::text IS NULL OR bucket = $1) "
                 "AND ($2::text IS NULL OR client_id = $2) "
                 "AND ($3::text IS NULL OR speaker_id > $3) "
                 "AND " + db::scope_clause("client_id", 5) + " ORDER BY speaker_id LIMIT $4",
               {f.bucket, f.client_id, f.after, std::to_string(f.fetch), db::scope_param(f.scope)},
               -1},
              [done](caf::expected<db_rows> rows) {
                if (!rows) return done(db::failure(rows.error()));
                db::read_into<std::vector<speaker_record>>(rows, done, "speaker row", [](const db_rows& in) {
                  std::vector<speaker_record> out;
                  for (const db_row& row : in.rows) out.push_back(speaker_from_row(row, 0));
                  return out;
                });
              });
  }

  void samples(const db::store_link& via, const samples_query& q, std::uint32_t limit,
               completion<std::pair<bool, quality_samples>> done) const override {
    via.query(samples_statement(q, limit + 1), [done, limit](caf::expected<db_rows> rows) {
      if (!rows) return done(db::failure(rows.error()));
      db::read_into<std::pair<bool, quality_samples>>(rows, done, "sample row", [limit](const db_rows& in) {
        std::pair<bool, quality_samples> out;
        out.first = samples_from_rows(in, limit, out.second);
        return out;
      });
    });
  }

  void release(const db::store_link& via, const std::string& speaker_id, std::int64_t epoch,
               completion<bool> done) const override {
    via.query(db::release_statement(speaker_id, epoch), [done](caf::expected<db_rows> rows) {
      if (!rows) return done(db::failure(rows.error()));
      done(true);
    });
  }

  void outbox_pending(const db::store_link& via, outbox_target target, std::uint32_t batch,
                      completion<std::vector<outbox_entry>> done) const override {
    const auto t = columns_of(target);
    db_statement stmt{std::string("SELECT ") + t.select_columns +
                        " FROM speakers.outbox WHERE topic = $1 AND " + t.stamp_column +
                        " IS NULL ORDER BY id LIMIT $2",
                      {std::string(t.topic), std::to_string(batch)},
                      -1};
    via.query(std::move(stmt), [done, t](caf::expected<db_rows> rows) {
      db::read_into<std::vector<outbox_entry>>(rows, done, "outbox row", [t](const db_rows& in) {
        std::vector<outbox_entry> out;
        for (const db_row& row : in.rows) out.push_back(t.read(row));
        return out;
      });
    });
  }

  void outbox_stamp(const db::store_link& via, outbox_target target, std::int64_t id,
                    std::int64_t relay_epoch, completion<bool> done) const override {
    const auto t = columns_of(target);
    db_statement stmt{std::string("UPDATE speakers.outbox SET ") + t.stamp_column +
                        " = now() WHERE id = $1 AND " + t.stamp_column + " IS NULL",
                      {std::to_string(id)},
                      -1};
    if (relay_epoch == 0) {
      via.query(std::move(stmt), [done](caf::expected<db_rows> rows) {
        if (!rows) return done(std::move(rows.error()));
        done(true);
      });
      return;
    }
    db_transaction tx;
    tx.statements.push_back(std::move(stmt));
    tx.statements.push_back(db::singleton_fence_statement(outbox_relay_singleton, relay_epoch));
    via.transact(std::move(tx), [done](caf::expected<db_results> r) {
      if (!r) return done(std::move(r.error()));
      done(true);
    });
  }

  void outbox_purge(const db::store_link& via, std::chrono::hours retention, std::chrono::seconds key_retention,
                    completion<bool> done) const override {
    db_transaction tx;
    tx.statements.push_back(
      {"DELETE FROM speakers.outbox WHERE created_at < now() - make_interval(hours => $1) AND "
       "((topic = $2 AND delivered_at IS NOT NULL AND stream_published_at IS NOT NULL) OR "
       "(topic = $3 AND audited_at IS NOT NULL))",
       {std::to_string(retention.count()), std::string(bucket_changed_topic), std::string(audit_topic)},
       -1});
    tx.statements.push_back(db::idempotency::purge(keys_table, key_retention));
    via.transact(std::move(tx), [done](caf::expected<db_results> r) {
      if (!r) return done(std::move(r.error()));
      done(true);
    });
  }
};

}  // namespace

store_ptr make_postgres_store() { return std::make_shared<postgres_store>(); }

}  // namespace sbm::speakers
