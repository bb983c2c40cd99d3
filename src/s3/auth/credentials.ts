// The verifier only needs a secret per access key id; where keys live (config file, SQL, a future
// IAM-like service) is the server's business, so this is the whole seam.
export interface CredentialStore {
  secretFor(accessKeyId: string): string | undefined;
}

// A fixed set of keys, e.g. from the segment's config file.
export function staticCredentials(keys: Readonly<Record<string, string>>): CredentialStore {
  const map = new Map(Object.entries(keys));
  return { secretFor: (accessKeyId) => map.get(accessKeyId) };
}
