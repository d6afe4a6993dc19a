// @growthub/agent-tools/coordination: locked task execution and orchestration.
export {};
