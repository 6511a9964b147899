/** Numbers fixed by OTP's epmd (spec §1, §2). */

export const DEFAULT_PORT = 4369;
/** Longest node name or extra field, in bytes (255 characters of up to 4 bytes). */
export const MAX_SYMBOL_BYTES = 1020;
/** Longest node name in characters (UTF-8 code points). */
export const MAX_NAME_CHARS = 255;
/** PORT_PLEASE2 allows one character less: OTP counts its internal NUL terminator (§5.2). */
export const MAX_LOOKUP_NAME_CHARS = 254;
/** Largest accepted frame payload: OTP's 3060-byte input buffer minus header and one spare byte. */
export const MAX_FRAME_PAYLOAD = 3057;
/** Bytes OTP reads before it knows a frame's length (its input buffer minus one); the rest stays unread. */
export const OTP_FIRST_READ = 3059;
/** Creation sent in a failed ALIVE2 reply. */
export const ERROR_CREATION = 99;
/** Old/unused names remembered for creation numbering (5 in OTP's debug mode). */
export const UNUSED_CAP = 1000;
export const UNUSED_CAP_DEBUG = 5;
/** Default idle limit for connections that are not registrations, seconds. */
export const DEFAULT_PACKET_TIMEOUT = 60;

export const RequestCode = {
  ALIVE2_REQ: 120, // 'x'
  PORT_PLEASE2_REQ: 122, // 'z'
  NAMES_REQ: 110, // 'n'
  DUMP_REQ: 100, // 'd'
  KILL_REQ: 107, // 'k'
  STOP_REQ: 115, // 's'
  /** epmd-ng's own, local peers only; OTP's epmd closes the connection without a reply. */
  STATUS_REQ: 83, // 'S'
} as const;

/** The STATUS_REQ layout this daemon answers: `S` followed by this version byte. */
export const STATUS_VERSION = 1;

export const ReplyCode = {
  ALIVE2_RESP: 121, // 'y', 16-bit creation
  ALIVE2_X_RESP: 118, // 'v', 32-bit creation
  PORT2_RESP: 119, // 'w'
} as const;
