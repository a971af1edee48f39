/**
 * What a model that takes instructions is asked when a profile's `greeting` makes the
 * agent speak first (OpenAI's response instructions, Gemini's client turn): its own
 * words for `auto`, else the greeting's, exactly.
 */
export function greetingInstruction(greeting: string): string {
  if (greeting === 'auto') return 'The call has just been answered. Greet the caller briefly and ask how you can help.';
  return `The call has just been answered. Greet the caller by saying exactly: ${JSON.stringify(greeting)}`;
}
