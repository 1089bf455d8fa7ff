/**
 * An order's receiver at rest: one AES-256-GCM envelope of {name, phone, address} in
 * orders.receiver, sealed with the order id as associated data (src/crypto/receiver.ts). Opened
 * for the owner and admins only; lists mask the phone. A tampered envelope is refused.
 */
import { maskPhone, type ReceiverCipher, type ReceiverInfo } from '../crypto/receiver.ts';
import { DomainError } from '../errors/domain-error.ts';

export type Receiver = ReceiverInfo;
export { maskPhone };

export interface ReceiverBox {
  seal(orderId: string, receiver: Receiver): string;
  open(orderId: string, envelope: string): Receiver;
}

export class CipherReceiverBox implements ReceiverBox {
  constructor(private readonly cipher: ReceiverCipher) {}

  seal(orderId: string, r: Receiver): string {
    return this.cipher.encrypt(JSON.stringify({ name: r.name, phone: r.phone, address: r.address }), orderId);
  }

  open(orderId: string, envelope: string): Receiver {
    try {
      return JSON.parse(this.cipher.decrypt(envelope, orderId)) as Receiver;
    } catch {
      // never the envelope or any of its content in the message
      throw new DomainError('INTERNAL', `The receiver of order ${orderId} could not be opened`);
    }
  }
}
