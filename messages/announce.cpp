#include "messages/announce.hpp"

#include <caf/actor_system_config.hpp>

#include "messages/cluster.hpp"
#include "messages/connections.hpp"
#include "messages/context.hpp"
#include "messages/errors.hpp"
#include "messages/events.hpp"
#include "messages/http.hpp"
#include "messages/instanote.hpp"
#include "messages/metrics.hpp"
#include "messages/patterns.hpp"
#include "messages/reports.hpp"
#include "messages/speakers.hpp"
#include "messages/users.hpp"
#include "messages/verification.hpp"

namespace sbm {

void announce_types(caf::actor_system_config& cfg) {
  cfg.add_error_category(error_category,
                         [](std::uint8_t code, caf::atom_value, const caf::message& ctx) {
                           std::string out = "sbm:";
                           out += to_string(static_cast<errc>(code));
                           if (ctx.match_elements<error_info>()) {
                             const auto& info = ctx.get_as<error_info>(0);
                             if (!info.detail.empty()) {
                               out += " (";
                               out += info.detail;
                               out += ')';
                             }
                           }
                           return out;
                         });
  cfg.add_message_type<error_info>("sbm::error_info");
  cfg.add_message_type<deadline>("sbm::deadline");
  cfg.add_message_type<request_context>("sbm::request_context");
  cfg.add_message_type<client_scope>("sbm::client_scope");
  // connections
  cfg.add_message_type<db_statement>("sbm::db_statement");
  cfg.add_message_type<db_transaction>("sbm::db_transaction");
  cfg.add_message_type<db_rows>("sbm::db_rows");
  cfg.add_message_type<db_results>("sbm::db_results");
  cfg.add_message_type<breaker_status>("sbm::breaker_status");
  cfg.add_message_type<dependency_status>("sbm::dependency_status");
  cfg.add_message_type<redis_command>("sbm::redis_command");
  cfg.add_message_type<redis_reply>("sbm::redis_reply");
  // cluster
  cfg.add_message_type<messages_version>("sbm::messages_version");
  cfg.add_message_type<cluster_member>("sbm::cluster_member");
  cfg.add_message_type<std::vector<cluster_member>>("std::vector<sbm::cluster_member>");
  cfg.add_message_type<cluster_member_status>("sbm::cluster_member_status");
  cfg.add_message_type<cluster_status>("sbm::cluster_status");
  cfg.add_message_type<placement_member>("sbm::placement_member");
  cfg.add_message_type<std::vector<placement_member>>("std::vector<sbm::placement_member>");
  cfg.add_message_type<cluster_placement>("sbm::cluster_placement");
  // metrics
  cfg.add_message_type<metric_sample>("sbm::metric_sample");
  cfg.add_message_type<histogram_sample>("sbm::histogram_sample");
  cfg.add_message_type<queue_gauge>("sbm::queue_gauge");
  cfg.add_message_type<component_metrics>("sbm::component_metrics");
  // gateway
  cfg.add_message_type<http_request>("sbm::http_request");
  cfg.add_message_type<std::vector<http_request>>("std::vector<sbm::http_request>");
  cfg.add_message_type<http_response>("sbm::http_response");
  // speakers
  cfg.add_message_type<speaker_registration>("sbm::speaker_registration");
  cfg.add_message_type<speaker_view>("sbm::speaker_view");
  cfg.add_message_type<speaker_stamp>("sbm::speaker_stamp");
  cfg.add_message_type<speaker_read>("sbm::speaker_read");
  cfg.add_message_type<bucket_pin>("sbm::bucket_pin");
  cfg.add_message_type<bucket_unpin>("sbm::bucket_unpin");
  cfg.add_message_type<quality_sample>("sbm::quality_sample");
  cfg.add_message_type<history_entry>("sbm::history_entry");
  cfg.add_message_type<speaker_history>("sbm::speaker_history");
  cfg.add_message_type<speaker_query>("sbm::speaker_query");
  cfg.add_message_type<speaker_page>("sbm::speaker_page");
  cfg.add_message_type<speaker_shard_stats>("sbm::speaker_shard_stats");
  cfg.add_message_type<samples_query>("sbm::samples_query");
  cfg.add_message_type<quality_point>("sbm::quality_point");
  cfg.add_message_type<quality_samples>("sbm::quality_samples");
  // events and verification
  cfg.add_message_type<bucket_changed>("sbm::bucket_changed");
  cfg.add_message_type<event_feed_query>("sbm::event_feed_query");
  cfg.add_message_type<event_feed_entry>("sbm::event_feed_entry");
  cfg.add_message_type<std::vector<event_feed_entry>>("std::vector<sbm::event_feed_entry>");
  cfg.add_message_type<event_feed_page>("sbm::event_feed_page");
  cfg.add_message_type<scheduled_verification>("sbm::scheduled_verification");
  cfg.add_message_type<schedule_query>("sbm::schedule_query");
  cfg.add_message_type<verification_schedule>("sbm::verification_schedule");
  cfg.add_message_type<verification_request>("sbm::verification_request");
  cfg.add_message_type<std::vector<verification_request>>("std::vector<sbm::verification_request>");
  cfg.add_message_type<verification_request_batch>("sbm::verification_request_batch");
  cfg.add_message_type<session_start>("sbm::session_start");
  cfg.add_message_type<session_job>("sbm::session_job");
  cfg.add_message_type<session_mark>("sbm::session_mark");
  cfg.add_message_type<job_residual>("sbm::job_residual");
  cfg.add_message_type<submit_outcome>("sbm::submit_outcome");
  cfg.add_message_type<session_view>("sbm::session_view");
  cfg.add_message_type<session_ref>("sbm::session_ref");
  cfg.add_message_type<session_marks>("sbm::session_marks");
  cfg.add_message_type<marks_receipt>("sbm::marks_receipt");
  cfg.add_message_type<session_submit>("sbm::session_submit");
  cfg.add_message_type<session_stats>("sbm::session_stats");
  // instanote
  cfg.add_message_type<job_pull_request>("sbm::job_pull_request");
  cfg.add_message_type<verification_job>("sbm::verification_job");
  cfg.add_message_type<job_pull>("sbm::job_pull");
  // patterns
  cfg.add_message_type<pattern_record>("sbm::pattern_record");
  cfg.add_message_type<pattern_record_batch>("sbm::pattern_record_batch");
  cfg.add_message_type<pattern_filter>("sbm::pattern_filter");
  cfg.add_message_type<pattern_search>("sbm::pattern_search");
  cfg.add_message_type<pattern_hit>("sbm::pattern_hit");
  cfg.add_message_type<pattern_hits>("sbm::pattern_hits");
  cfg.add_message_type<pattern_batch_search>("sbm::pattern_batch_search");
  cfg.add_message_type<pattern_batch_hit>("sbm::pattern_batch_hit");
  cfg.add_message_type<pattern_batch_hits>("sbm::pattern_batch_hits");
  cfg.add_message_type<correction_request>("sbm::correction_request");
  cfg.add_message_type<draft_correction>("sbm::draft_correction");
  cfg.add_message_type<corrected_draft>("sbm::corrected_draft");
  cfg.add_message_type<pattern_index_status>("sbm::pattern_index_status");
  // reports
  cfg.add_message_type<report_submission>("sbm::report_submission");
  cfg.add_message_type<saga_entry>("sbm::saga_entry");
  cfg.add_message_type<error_report>("sbm::error_report");
  cfg.add_message_type<report_receipt>("sbm::report_receipt");
  cfg.add_message_type<report_query>("sbm::report_query");
  cfg.add_message_type<report_page>("sbm::report_page");
  cfg.add_message_type<report_status_change>("sbm::report_status_change");
  cfg.add_message_type<pattern_verdict>("sbm::pattern_verdict");
  cfg.add_message_type<verification_verdicts>("sbm::verification_verdicts");
  cfg.add_message_type<pattern_weight>("sbm::pattern_weight");
  cfg.add_message_type<verdicts_applied>("sbm::verdicts_applied");
  cfg.add_message_type<pattern_learned>("sbm::pattern_learned");
  // users and audit
  cfg.add_message_type<user_record>("sbm::user_record");
  cfg.add_message_type<audit_origin>("sbm::audit_origin");
  cfg.add_message_type<user_creation>("sbm::user_creation");
  cfg.add_message_type<user_update>("sbm::user_update");
  cfg.add_message_type<user_standing>("sbm::user_standing");
  cfg.add_message_type<audit_record>("sbm::audit_record");
  cfg.add_message_type<audit_query>("sbm::audit_query");
  cfg.add_message_type<audit_page>("sbm::audit_page");
}

}  // namespace sbm
