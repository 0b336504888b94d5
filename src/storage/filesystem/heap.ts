/**
 * Raises glibc's dynamic mmap and trim thresholds once, by releasing one large allocation.
 *
 * Every 64 KiB socket read of an upload is a fresh buffer that the garbage collector frees some
 * 30 MB later. With glibc's starting thresholds (128 KiB) the freed top of the heap goes back to the
 * kernel and is faulted in again moments later: 10-20k page faults per 256 MiB pushed, up to a
 * third of a push's CPU. glibc raises both thresholds when it frees an mmapped block bigger than the
 * current threshold (mallopt(3), "dynamic mmap threshold"): after one 30 MiB block, blocks up to
 * 30 MiB come from the heap and up to 60 MiB of freed heap stays mapped for reuse. Measured: faults
 * per push down to a few hundred, push CPU down 10-35%, peak RSS while streaming 2 GiB unchanged.
 * Elsewhere (another libc) it is an untouched allocation released at the next garbage collection.
 */
let done = false;

export function keepFreedMemory(): void {
  if (done) return;
  done = true;
  // Never written to, so never resident; 30 MiB stays under glibc's 32 MiB ceiling for the adjustment.
  void Buffer.allocUnsafeSlow(30 << 20);
}
