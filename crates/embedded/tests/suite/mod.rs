mod engine;
mod pull;
