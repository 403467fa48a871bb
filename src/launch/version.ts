// The version printed by `slipway version` and sent as User-Agent; kept in step with package.json.
export const version = '0.1.0';
