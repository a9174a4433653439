#pragma once
// Fans bucket_changed out to subscribers inside the actor system. Durable subscribers must answer
// true (after making the effect durable) and `publish` answers true only when all of them did;
// the others get the event fire-and-forget, and so do the other members' buses (told by the
// membership actor), which pass it to their own non-durable subscribers only. A subscriber is
// monitored and dropped when it dies.
#include "actors/events/events.hpp"
