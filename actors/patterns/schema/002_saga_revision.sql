-- The report saga's revision that wrote the row: an upsert from an older revision (a late step of
-- a saga that was rewound meanwhile) must not overwrite a newer status or weight.
ALTER TABLE patterns.patterns ADD COLUMN saga_revision bigint NOT NULL DEFAULT 0;
