// cluster-key-slot ships no types; this is the part we use.
declare module "cluster-key-slot" {
  /** CRC16 slot (0..16383) of a key, honouring its {hash tag}. Strings are hashed as UTF-8. */
  function calculateSlot(key: string | Buffer): number;
  export = calculateSlot;
}
