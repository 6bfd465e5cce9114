// The saga example's topologies as worker modules, one per service, chosen by WEIR_SAGA_SERVICE:
//   WEIR_SAGA_SERVICE=payment   weir worker examples/saga/topology.ts   (also inventory, shipping)
//   WEIR_SAGA_SERVICE=saga      weir worker examples/saga/topology.ts   (the order saga)
// Topics are `<prefix>.*` with the prefix from WEIR_ORDERS_PREFIX (default `orders`), shared with examples/orders;
// create them with `node examples/saga/create-topics.ts`. Consumer groups: `<prefix>-<service>`.
import { WeirError } from '../../core/errors.ts'
import { prefixFromEnv } from '../orders/service.ts'
import { PARTICIPANTS, orderSaga, participantService, sagaApplicationId } from './services.ts'
import type { Participant } from './services.ts'

const prefix = prefixFromEnv()
const which = process.env.WEIR_SAGA_SERVICE ?? ''
const isParticipant = (name: string): name is Participant => (PARTICIPANTS as readonly string[]).includes(name)
if (which !== 'saga' && !isParticipant(which)) {
  throw new WeirError('WEIR_ERR_INVALID_OPTIONS', `WEIR_SAGA_SERVICE must be saga, ${PARTICIPANTS.join(', ')}; got "${which}"`)
}

export const applicationId = which === 'saga' ? sagaApplicationId(prefix) : `${prefix}-${which}`
export const topology = isParticipant(which) ? participantService(prefix, which).topology : orderSaga(prefix).topology
