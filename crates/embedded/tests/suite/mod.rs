mod engine;
mod openai;
mod pull;
