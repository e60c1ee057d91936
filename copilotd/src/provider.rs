//! STUB for type checking (uncommitted)
use std::time::Duration;
pub enum ProviderKind {
    OpenAi,
    Anthropic,
}
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub base_url: String,
    pub model: String,
    pub api_key: Option<zeroize::Zeroizing<String>>,
    pub timeout: Duration,
    pub max_retries: u32,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}
#[derive(Debug, Clone)]
pub struct Message {
    pub role: Role,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub tool_call_id: Option<String>,
}
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
}
pub struct ChatRequest {
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: u32,
}
pub enum Delta {
    Text(String),
}
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}
pub struct Completion {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
}
#[derive(Debug, thiserror::Error)]
#[error("x")]
pub struct ProviderError;
pub struct Provider;
impl Provider {
    pub fn new(_c: ProviderConfig) -> Result<Provider, ProviderError> {
        todo!()
    }
    pub fn request_body(&self, _r: &ChatRequest) -> serde_json::Value {
        todo!()
    }
    pub async fn send(
        &self,
        _b: &serde_json::Value,
        _d: &mut (dyn FnMut(Delta) + Send),
    ) -> Result<Completion, ProviderError> {
        todo!()
    }
}
