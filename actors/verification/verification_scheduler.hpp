#pragma once
// Turns every speaker.bucket.changed into one durable verification.schedule row (priority "high"
// when the new bucket is no_touch, else "normal") and lists the schedule. Idempotent on the event
// id: a redelivered event inserts nothing and is acknowledged again.
#include "actors/verification/verification.hpp"
