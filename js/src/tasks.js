// @growthub/agent-tools/tasks: OpenAI function calling (filled in by the tasks module).
export {};
