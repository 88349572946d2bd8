// Recognises images by their first bytes (magic numbers), never by their file name: `.JPG`,
// `.jpeg`, no extension and wrong extensions all work, and a text file named `x.jpg` is not an image.

/** Image formats the trainer decodes. */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff';

export const SUPPORTED_FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'webp', 'gif', 'tiff'];

/** How many leading bytes `sniffImage` needs to decide. */
export const SNIFF_BYTES = 16;

/** What the first bytes say: a supported image format, or a description of what the file is instead. */
export type SniffResult = { image: true; format: ImageFormat } | { image: false; what: string };

function startsWith(head: Uint8Array, bytes: readonly number[], offset = 0): boolean {
  if (head.length < offset + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (head[offset + i] !== bytes[i]) return false;
  return true;
}

function ascii(head: Uint8Array, offset: number, length: number): string {
  return String.fromCharCode(...head.subarray(offset, offset + length));
}

/** Classifies a file from its first `SNIFF_BYTES` bytes. */
export function sniffImage(head: Uint8Array): SniffResult {
  if (startsWith(head, [0xff, 0xd8, 0xff])) return { image: true, format: 'jpeg' };
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { image: true, format: 'png' };
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 4) === 'WEBP') return { image: true, format: 'webp' };
  if (ascii(head, 0, 6) === 'GIF87a' || ascii(head, 0, 6) === 'GIF89a') return { image: true, format: 'gif' };
  // Classic TIFF (42) and BigTIFF (43), both byte orders.
  if (startsWith(head, [0x49, 0x49, 0x2a, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2a])) return { image: true, format: 'tiff' };
  if (startsWith(head, [0x49, 0x49, 0x2b, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2b])) return { image: true, format: 'tiff' };
  return { image: false, what: describeNonImage(head) };
}

// Names the usual suspects so the report says "a BMP image (not supported)" rather than just "not an image".
function describeNonImage(head: Uint8Array): string {
  if (head.length === 0) return 'an empty file';
  if (ascii(head, 0, 2) === 'BM') return 'a BMP image (not supported: convert it to PNG or JPEG)';
  if (ascii(head, 4, 4) === 'ftyp') {
    const brand = ascii(head, 8, 4);
    if (/^(heic|heix|hevc|heim|heis|mif1|msf1)$/.test(brand)) return 'a HEIC/HEIF image (not supported: convert it to JPEG)';
    if (/^avi[fs]$/.test(brand)) return 'an AVIF image (not supported: convert it to PNG or JPEG)';
    return `an ISO media file (${brand.trim()})`;
  }
  if (startsWith(head, [0x00, 0x00, 0x01, 0x00])) return 'an ICO icon (not supported)';
  if (ascii(head, 0, 4) === '%PDF') return 'a PDF document';
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return 'a ZIP archive';
  if (startsWith(head, [0x1f, 0x8b])) return 'a gzip archive';
  const text = ascii(head, 0, Math.min(head.length, SNIFF_BYTES))
    .replace(/^\uFEFF|^\xEF\xBB\xBF/, '')
    .trimStart();
  if (/^<(\?xml|svg)/i.test(text)) return 'an SVG or XML document (not supported)';
  if (isProbablyText(head)) return 'a text file';
  return 'not a JPEG, PNG, WebP, GIF or TIFF file';
}

function isProbablyText(head: Uint8Array): boolean {
  for (const b of head) if (b === 0 || (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d)) return false;
  return true;
}
