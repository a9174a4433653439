#include "runtime/db/idempotency.hpp"

#include <caf/error.hpp>
#include <nlohmann/json.hpp>

#include "messages/errors.hpp"
#include "runtime/db/rows.hpp"

namespace sbm::db::idempotency {

db_statement lookup(const char* table, const request_context& ctx, std::chrono::seconds retention) {
  return {std::string("SELECT request_digest, outcome, answer FROM ") + table +
            " WHERE principal = $1 AND idem_key = $2 "
            "AND created_at > now() - make_interval(secs => $3::double precision)",
          {ctx.principal, ctx.idempotency_key, std::to_string(retention.count())},
          -1,
          ctx.until};
}

lookup_result judge(const db_rows& rows, const request_context& ctx) {
  lookup_result out;
  if (rows.rows.empty())
    return out;
  const auto& row = rows.rows.front();
  if (text_column(row, 0) != ctx.request_digest) {
    out.v = verdict::reused;
    return out;
  }
  out.v = verdict::replay;
  out.stored.outcome = static_cast<std::uint8_t>(int_column(row, 1));
  out.stored.answer = text_column(row, 2);
  return out;
}

db_statement store(const char* table, const request_context& ctx, std::uint8_t outcome,
                   const std::string& answer_sql, std::vector<caf::optional<std::string>> params) {
  std::vector<caf::optional<std::string>> all{ctx.principal, ctx.idempotency_key,
                                              ctx.request_digest, std::to_string(outcome)};
  for (auto& p : params)
    all.push_back(std::move(p));
  return {std::string("INSERT INTO ") + table +
            " (principal, idem_key, request_digest, outcome, answer) SELECT $1, $2, $3, "
            "$4::smallint, " +
            answer_sql + " ON CONFLICT (principal, idem_key) DO NOTHING",
          std::move(all),
          1,
          ctx.until};
}

db_statement store_text(const char* table, const request_context& ctx, std::uint8_t outcome,
                        std::string answer) {
  return store(table, ctx, outcome, "$5", {std::move(answer)});
}

db_statement purge(const char* table, std::chrono::seconds retention) {
  return {std::string("DELETE FROM ") + table +
            " WHERE created_at <= now() - make_interval(secs => $1::double precision)",
          {std::to_string(retention.count())},
          -1,
          {}};
}

db_row row_of_answer(const std::string& answer) {
  nlohmann::json values;
  try {
    values = nlohmann::json::parse(answer);
  } catch (const std::exception&) {
    throw std::runtime_error("stored answer is not JSON");
  }
  if (!values.is_array())
    throw std::runtime_error("stored answer is not an array");
  // Back to PostgreSQL's text forms: json_build_array turned booleans and numbers into JSON.
  db_row row;
  for (const auto& v : values) {
    if (v.is_null())
      row.emplace_back(caf::none);
    else if (v.is_string())
      row.emplace_back(v.get<std::string>());
    else if (v.is_boolean())
      row.emplace_back(std::string(v.get<bool>() ? "t" : "f"));
    else
      row.emplace_back(v.dump());
  }
  return row;
}

std::optional<caf::error> keys_in_flight::claim(const request_context& ctx, std::string& held) {
  held.clear();
  if (!ctx.keyed())
    return std::nullopt;
  auto key = ctx.principal + '\0' + ctx.idempotency_key;
  if (!keys_.insert(key).second)
    return in_progress(ctx);
  held = std::move(key);
  return std::nullopt;
}

void keys_in_flight::release(const std::string& held) {
  if (!held.empty())
    keys_.erase(held);
}

caf::error reused(const request_context& ctx) {
  return make_error(errc::key_reused, "Idempotency-Key '" + ctx.idempotency_key +
                                        "' was used for a different request; use a new key");
}

caf::error in_progress(const request_context& ctx) {
  return make_error(errc::in_progress,
                    "a request with Idempotency-Key '" + ctx.idempotency_key +
                      "' is still running; retry with the same key shortly",
                    std::chrono::seconds{1});
}

caf::error refusal_of(const stored_answer& stored) {
  return make_error(static_cast<errc>(stored.outcome), stored.answer);
}

}  // namespace sbm::db::idempotency
