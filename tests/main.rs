//! Onyx's integration and end-to-end tests, in one binary so the heavy dependencies link once.
//! They need PostgreSQL and moto's server: run them with `make test`.

mod bounded_runs;
mod cli;
mod continuity;
mod db_tls;
mod deletes;
mod extract;
mod extract_lambda;
mod iam_policy;
mod lake;
mod lambda_binaries;
mod load;
mod make_infra;
mod operate;
mod packaging;
mod pipeline;
mod quarantine;
mod run_control;
mod setup;
mod smoke;
mod source_behaviour;
mod supply_chain;
mod support;
mod terraform_network;
mod terraform_wiring;
mod transform;
mod verify;
mod versions;
mod warehouse_roles;
