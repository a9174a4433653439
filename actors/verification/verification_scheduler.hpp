#pragma once
// Turns every speaker.bucket.changed into one durable verification.schedule row (priority "high"
// when the new bucket is no_touch, else "normal") and lists the schedule. Idempotent on the event
// id: a redelivered event inserts nothing and is acknowledged again. Other families ask for a
// verification directly (schedule_atom), idempotent the same way on the request's source_key.
#include "actors/verification/verification.hpp"
