-- Schema version 4 (issue #11): the ledger records runs an operator set aside (`onyx park`) as
-- well as loaded ones, with the park record (who, when, why) as its note.
ALTER TABLE onyx_load_ledger
    ADD COLUMN status TEXT NOT NULL DEFAULT 'loaded' CHECK (status IN ('loaded', 'parked')),
    ADD COLUMN note JSONB;
