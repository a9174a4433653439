#include "gateway/audit.hpp"

#include <caf/event_based_actor.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "gateway/gateway_state.hpp"
#include "runtime/logging/logging.hpp"

namespace sbm::gateway {

namespace {

constexpr std::size_t max_target_bytes = 256;
constexpr std::size_t max_reason_bytes = 256;
constexpr std::size_t max_actor_bytes = 160;

std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

std::string request_target(const http_request& req) {
  return printable(req.method + " " + req.path, max_target_bytes);
}

}  // namespace

std::string printable(std::string_view text, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    auto n = sequence_length(c);
    std::string_view piece;
    if (n == 1) {
      piece = (c < 0x20 || c == 0x7F) ? std::string_view{"?"} : text.substr(i, 1);
    } else if (n > 1 && i + n <= text.size() && valid_utf8(text.substr(i, n))) {
      piece = text.substr(i, n);
    } else {
      piece = "?";
      n = 1;
    }
    if (out.size() + piece.size() > max_bytes)
      break;
    out.append(piece);
    i += n;
  }
  return out;
}

audit_origin origin_of(const principal& who, const http_request& req) {
  audit_origin o;
  o.actor = printable(who.describe(), max_actor_bytes);
  o.actor_kind = who.service_id.empty() ? "user" : "service";
  o.peer = printable(req.peer, 64);
  return o;
}

void audit_refusal(const gateway_context& ctx, const http_request& req, const principal* who,
                   std::uint16_t status, std::string_view reason) {
  if (!ctx.settings.audit)
    return;
  audit_record r;
  if (who) {
    auto o = origin_of(*who, req);
    r.actor = std::move(o.actor);
    r.actor_kind = std::move(o.actor_kind);
  } else {
    // An unverified token names nobody: its claims are not evidence of who sent it.
    r.actor = "anonymous";
    r.actor_kind = "anonymous";
  }
  r.action = std::string{audit_action::request_refused};
  r.target = request_target(req);
  r.outcome = "refused";
  r.status = status;
  r.peer = printable(req.peer, 64);
  r.detail = nlohmann::json{{"reason", printable(reason, max_reason_bytes)}}.dump();
  ctx.self->send(ctx.settings.audit, refused_atom::value, std::move(r));
}

void audit_success(gateway_context& ctx, const http_request& req, const principal& who,
                   std::string_view action, std::string target, std::uint16_t status,
                   const nlohmann::json& detail, std::function<void()> then) {
  if (!ctx.settings.audit) {
    then();
    return;
  }
  auto o = origin_of(who, req);
  audit_record r;
  r.actor = std::move(o.actor);
  r.actor_kind = std::move(o.actor_kind);
  r.action = std::string{action};
  r.target = printable(target, max_target_bytes);
  r.outcome = "success";
  r.status = status;
  r.peer = std::move(o.peer);
  r.detail = detail.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  ctx.self->request(ctx.settings.audit, ctx.hop(), audit_atom::value, r)
    .then([then](bool) { then(); },
          [then, r](caf::error& err) {
            sbm::log::get("gateway")->error("audit record {} on {} by {} was not written: {}",
                                            r.action, sbm::log::escape(r.target),
                                            sbm::log::escape(r.actor), caf::to_string(err));
            then();
          });
}

void audit_notes_read(gateway_context& ctx, const http_request& req, const principal& who,
                      std::vector<notes_shown> shown, std::function<void(bool)> then) {
  shown.erase(std::remove_if(shown.begin(), shown.end(),
                             [](const notes_shown& s) { return s.report_ids.empty(); }),
              shown.end());
  if (shown.empty() || !ctx.settings.audit) {
    then(true);
    return;
  }
  auto o = origin_of(who, req);
  // Shared by the rows' answers: the last one to arrive calls `then`, with whether all committed.
  struct pending_rows {
    std::size_t left;
    bool recorded = true;
    std::function<void(bool)> then;
  };
  auto pending = std::make_shared<pending_rows>(pending_rows{shown.size(), true, std::move(then)});
  auto one_done = [pending](bool ok) {
    pending->recorded = pending->recorded && ok;
    if (--pending->left == 0)
      pending->then(pending->recorded);
  };
  for (auto& s : shown) {
    audit_record r;
    r.actor = o.actor;
    r.actor_kind = o.actor_kind;
    r.action = std::string{audit_action::notes_read};
    r.target = s.report_ids.size() == 1 ? std::to_string(s.report_ids.front()) : request_target(req);
    r.outcome = "success";
    r.status = 200;
    r.peer = o.peer;
    r.client_id = s.client_id;
    r.detail = nlohmann::json{{"report_ids", s.report_ids}}.dump();
    ctx.self->request(ctx.settings.audit, ctx.hop(), audit_atom::value, r)
      .then([one_done](bool) { one_done(true); },
            [one_done, action = r.action, actor = r.actor](caf::error& err) {
              sbm::log::get("gateway")->error("audit record {} by {} was not written: {}", action,
                                              sbm::log::escape(actor), caf::to_string(err));
              one_done(false);
            });
  }
}

}  // namespace sbm::gateway
