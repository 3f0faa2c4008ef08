package dev.mcpstack.api;

/** The JSON Schemas of the MCP tools' arguments and structured results (see {@link McpTools}). */
final class McpSchemas {
  private McpSchemas() {}

  private static final String USAGE =
      """
      {"type":"object","properties":{
        "prompt_tokens":{"type":"integer","minimum":0},
        "completion_tokens":{"type":"integer","minimum":0},
        "total_tokens":{"type":"integer","minimum":0}},
       "required":["prompt_tokens","total_tokens"]}""";

  static final String ASK_INPUT =
      """
      {"type":"object","additionalProperties":false,
       "properties":{
        "model":{"type":"string","minLength":1,"description":"The model to ask: an id from list_models."},
        "prompt":{"type":"string","description":"The user's message. Give this or 'messages'."},
        "system":{"type":"string","description":"An optional system message sent before 'prompt'."},
        "messages":{"type":"array","minItems":1,"description":"The whole conversation in the OpenAI chat format, instead of 'prompt'.",
          "items":{"type":"object","required":["role","content"],"properties":{
            "role":{"type":"string","enum":["system","developer","user","assistant"]},
            "content":{"type":"string"}}}},
        "max_tokens":{"type":"integer","minimum":1,"description":"Most tokens the reply may have."},
        "temperature":{"type":"number","minimum":0,"maximum":2},
        "top_p":{"type":"number","minimum":0,"maximum":1},
        "seed":{"type":"integer"},
        "stop":{"oneOf":[{"type":"string"},{"type":"array","items":{"type":"string"},"maxItems":4}]}},
       "required":["model"]}""";

  static final String ASK_OUTPUT =
      """
      {"type":"object",
       "properties":{
        "id":{"type":"string","description":"The chat completion's id (its task)."},
        "model":{"type":"string"},
        "content":{"type":["string","null"],"description":"The model's reply."},
        "finish_reason":{"type":["string","null"]},
        "usage":"""
          + USAGE
          + """
      },
       "required":["id","model","content","usage"]}""";

  static final String EMBED_INPUT =
      """
      {"type":"object","additionalProperties":false,
       "properties":{
        "model":{"type":"string","minLength":1,"description":"An embeddings model: an id from list_models."},
        "texts":{"type":"array","minItems":1,"items":{"type":"string"},"description":"The texts to embed."}},
       "required":["model","texts"]}""";

  static final String EMBED_OUTPUT =
      """
      {"type":"object",
       "properties":{
        "id":{"type":"string"},
        "model":{"type":"string"},
        "embeddings":{"type":"array","items":{"type":"array","items":{"type":"number"}},
          "description":"One vector per text, in the order of 'texts'."},
        "usage":"""
          + USAGE
          + """
      },
       "required":["id","model","embeddings"]}""";

  static final String SUBMIT_INPUT =
      """
      {"type":"object","additionalProperties":false,
       "properties":{
        "kind":{"type":"string","enum":["chat","embeddings","model_warmup"],
          "description":"What the task does; model_warmup is for operators only."},
        "request":{"type":"object","description":"The OpenAI request body: a chat completion request (without stream) or an embeddings request.",
          "required":["model"],"properties":{"model":{"type":"string"}}},
        "timeout_seconds":{"type":"integer","minimum":1,"description":"How long the task may take; the server's default when absent."},
        "idempotency_key":{"type":"string","minLength":1,"maxLength":255,
          "description":"Submitting again with the same key answers the same task instead of starting another (as the Idempotency-Key header)."}},
       "required":["kind","request"]}""";

  static final String GET_INPUT =
      """
      {"type":"object","additionalProperties":false,
       "properties":{"id":{"type":"string","pattern":"^task-[A-Za-z0-9]+$","description":"The id submit_task answered."}},
       "required":["id"]}""";

  static final String TASK_OUTPUT =
      """
      {"type":"object",
       "properties":{
        "id":{"type":"string"},
        "object":{"const":"task"},
        "kind":{"type":"string"},
        "model":{"type":"string"},
        "status":{"type":"string","enum":["queued","running","retry_scheduled","succeeded","failed","cancelled"]},
        "attempts":{"type":"integer"},
        "created_at":{"type":["integer","null"]},
        "updated_at":{"type":["integer","null"]},
        "deadline":{"type":["integer","null"]},
        "next_attempt_at":{"type":["integer","null"]},
        "result":{"description":"The OpenAI response object once succeeded, else null."},
        "error":{"type":["object","null"]}},
       "required":["id","status","kind"]}""";

  static final String MODELS_INPUT =
      """
      {"type":"object","additionalProperties":false,"properties":{}}""";

  static final String MODELS_OUTPUT =
      """
      {"type":"object",
       "properties":{"models":{"type":"array","items":{"type":"object",
         "properties":{"id":{"type":"string"},"owned_by":{"type":"string"}},"required":["id"]}}},
       "required":["models"]}""";
}
