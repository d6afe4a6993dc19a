// An offline stand-in for the OpenAI client, used by the demo when no OPENAI_API_KEY /
// OPENAI_BASE_URL is set: it answers each forced tool call with canned, schema-valid arguments
// in the shape of a real Chat Completions response. Nothing here is a model; it replays.
const canned = {
  analyze_intent: { analysis: 'Three social posts for a product launch.', conclusion: 'Generate 3 images.', confidence: 0.86, inferred_assets: 3, asset_types: ['image'], reasoning_steps: ['"3 posts" names the count', 'posts are visual'] },
  analyze_brand: { analysis: 'Name, colours and two references are present.', conclusion: 'Ready.', confidence: 0.8, brand_strength: 'strong', brand_consistency_score: 0.78, recommendations: ['Add a logo file'] },
  assess_complexity: { analysis: 'Few assets, strong brand.', conclusion: 'Moderate.', confidence: 0.74, complexity_level: 'moderate', complexity_score: 0.45, estimated_duration_ms: 42000 },
};

export function createReplayClient() {
  let n = 0;
  return {
    replay: true,
    chat: {
      completions: {
        async create(params) {
          const name = params.tool_choice?.function?.name;
          await new Promise((resolve) => setTimeout(resolve, 20)); // a little latency, as a network would add
          return {
            id: `chatcmpl-replay-${++n}`,
            object: 'chat.completion',
            created: Math.floor(Date.now() / 1000),
            model: params.model,
            choices: [{
              index: 0,
              logprobs: null,
              finish_reason: 'tool_calls',
              message: { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: `call_${n}`, type: 'function', function: { name, arguments: JSON.stringify(canned[name] ?? {}) } }] },
            }],
          };
        },
      },
    },
  };
}
