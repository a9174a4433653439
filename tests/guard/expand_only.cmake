# cmake -DDIR=<folder of families> -P expand_only.cmake
# Holds every migration DIR/<family>/schema/NNN_name.sql to the expand rule (README, "Upgrading a
# cluster"): during a rolling upgrade the old build runs on the database the new build migrated, so
# a migration may only add (tables, nullable or defaulted columns, indexes, functions). Refused
# unless the file holds a line starting with "-- sbm:contract" (runtime/migrations, is_contract):
# DROP of anything but NOT NULL, RENAME, a column's TYPE, SET NOT NULL, TRUNCATE, and ADD COLUMN
# ... NOT NULL without a DEFAULT (the old build's inserts do not name the column). A file with a
# line starting with "-- sbm:relaxes" may also DROP CONSTRAINT and DROP INDEX: it says why the old
# build relies on none of them (no ON CONFLICT, no read that needs the index gone). Fails naming
# each file and what it found.
cmake_minimum_required(VERSION 3.16)
if(NOT DIR)
  message(FATAL_ERROR "usage: cmake -DDIR=<folder of families> -P expand_only.cmake")
endif()

# Applied before the rule was written: their text is recorded by checksum in every database, so
# they stay as they are. Each was safe at its time because clusters ran one build at once.
set(before_the_rule
  "verification/schema/004_sessions.sql"  # replaced schedule_status_check by a wider one
)

file(GLOB files "${DIR}/*/schema/*.sql")
if(NOT files)
  message(FATAL_ERROR "no migrations under ${DIR}/*/schema: the guard would pass without looking")
endif()
set(offences "")
foreach(file ${files})
  file(RELATIVE_PATH name "${DIR}" "${file}")
  if(name IN_LIST before_the_rule)
    continue()
  endif()
  file(READ "${file}" text)
  if(text MATCHES "(^|\n)-- sbm:contract")
    continue()
  endif()
  set(relaxes FALSE)
  if(text MATCHES "(^|\n)-- sbm:relaxes")
    set(relaxes TRUE)
  endif()
  # Comments say why, so they may name what the SQL must not do; a statement is judged without them.
  string(REGEX REPLACE "--[^\n]*" "" sql "${text}")
  string(TOUPPER "${sql}" sql)
  string(REGEX REPLACE "[ \t\r\n]+" " " sql "${sql}")
  string(REPLACE "DROP NOT NULL" "" sql "${sql}")
  string(REPLACE "IS NOT NULL" "" sql "${sql}")
  # One statement per list element (a ';' inside a function body splits it too: harmless here).
  string(REPLACE ";" "\n" statements "${sql}")
  string(REGEX REPLACE "\n" ";" statements "${statements}")
  foreach(statement IN LISTS statements)
    set(found "")
    if(statement MATCHES "(DROP [A-Z_]+)")
      set(found "${CMAKE_MATCH_1}")
      if(relaxes AND found MATCHES "^DROP (CONSTRAINT|INDEX)$")
        set(found "")
      endif()
    elseif(statement MATCHES "(RENAME)")
      set(found "RENAME")
    elseif(statement MATCHES "(ALTER (COLUMN )?[A-Z0-9_\"]+ (SET DATA )?TYPE)")
      set(found "${CMAKE_MATCH_1}")
    elseif(statement MATCHES "SET NOT NULL")
      set(found "SET NOT NULL")
    elseif(statement MATCHES "^ *TRUNCATE ")
      set(found "TRUNCATE")
    elseif(statement MATCHES "ALTER TABLE .* ADD (COLUMN )?" AND statement MATCHES "NOT NULL"
           AND NOT statement MATCHES "DEFAULT" AND NOT statement MATCHES " ADD (CONSTRAINT|PRIMARY|UNIQUE|CHECK|FOREIGN)")
      set(found "ADD COLUMN ... NOT NULL without a DEFAULT")
    endif()
    if(found)
      string(APPEND offences "\n  ${name}: ${found}")
    endif()
  endforeach()
endforeach()
if(offences)
  message(FATAL_ERROR "migrations only expand while the old build still runs on the database; a "
                      "drop, rename or narrowing is a contract step shipped a release after the "
                      "expand it finishes, marked by a line '-- sbm:contract':${offences}")
endif()
list(LENGTH files count)
message(STATUS "${count} migrations under ${DIR}, each an expand step or marked as a contract step")
